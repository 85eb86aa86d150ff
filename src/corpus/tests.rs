//! The corpus layer's tests: every grammar, folder scanning, relabelling, manifests, combining.

use super::*;

use Emotion::{Anger, Happiness, Neutral, Sadness, Surprise};

/// Creates an empty file (and its folders) under `root`.
fn touch(root: &Path, rel: &str) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"").unwrap();
    path
}

fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

/// (file name, label, speaker) of each item, in order.
fn summary(source: &Source) -> Vec<(String, Emotion, String)> {
    source
        .items
        .iter()
        .map(|i| {
            (
                i.path.file_name().unwrap().to_string_lossy().into_owned(),
                i.label,
                i.speaker.clone(),
            )
        })
        .collect()
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn row(name: &str, label: Emotion, speaker: &str) -> (String, Emotion, String) {
    (name.to_string(), label, speaker.to_string())
}

#[test]
fn ravdess() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "Actor_01/03-01-01-01-01-01-01.wav",
        "Actor_01/03-01-02-01-01-01-01.wav",
        "Actor_01/03-01-05-02-01-02-01.wav",
        "Actor_02/03-01-08-01-02-01-02.wav",
        "Actor_02/03-01-06-01-02-01-02.wav",
        "Actor_02/03-01-07-01-02-01-02.wav",
        "Actor_02/03-01-03-01-02-01-02.wav",
        "Actor_02/03-01-04-01-02-01-02.wav",
        "Actor_02/notes.wav",
    ] {
        touch(root, name);
    }
    touch(root, "README.md");
    touch(root, "Actor_02/._03-01-04-01-02-01-02.wav");
    let source = load(root).unwrap();
    assert_eq!(source.kind, Kind::Ravdess);
    assert_eq!(source.corpus, "ravdess");
    assert_eq!(
        summary(&source),
        vec![
            row("03-01-01-01-01-01-01.wav", Neutral, "ravdess:01"),
            row("03-01-05-02-01-02-01.wav", Anger, "ravdess:01"),
            row("03-01-03-01-02-01-02.wav", Happiness, "ravdess:02"),
            row("03-01-04-01-02-01-02.wav", Sadness, "ravdess:02"),
            row("03-01-08-01-02-01-02.wav", Surprise, "ravdess:02"),
        ]
    );
    assert!(source.items.iter().all(|i| i.corpus == "ravdess"));
    assert_eq!(
        source.items[0].path,
        root.join("Actor_01/03-01-01-01-01-01-01.wav")
    );
    assert_eq!(
        source.left_out,
        counts(&[("calm", 1), ("disgust", 1), ("fearful", 1)])
    );
    assert_eq!(source.problems.len(), 1);
    assert_eq!(source.problems[0].path, root.join("Actor_02/notes.wav"));
    assert!(source.problems[0].error.contains("RAVDESS"));
}

#[test]
fn emodb() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "wav/03a01Fa.wav",
        "wav/03a01Wa.wav",
        "wav/08b02Tc.wav",
        "wav/16a05Nd.wav",
        "wav/09a02La.wav",
        "wav/10b09Eb.wav",
        "wav/11a04Ac.wav",
    ] {
        touch(root, name);
    }
    touch(root, "silb/03a01Fa.txt");
    let source = load(root).unwrap();
    assert_eq!(source.kind, Kind::EmoDb);
    assert_eq!(
        summary(&source),
        vec![
            row("03a01Fa.wav", Happiness, "emodb:03"),
            row("03a01Wa.wav", Anger, "emodb:03"),
            row("08b02Tc.wav", Sadness, "emodb:08"),
            row("16a05Nd.wav", Neutral, "emodb:16"),
        ]
    );
    assert_eq!(
        source.left_out,
        counts(&[("boredom", 1), ("disgust", 1), ("fear", 1)])
    );
    assert!(source.problems.is_empty());
}

#[test]
fn tess() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "OAF_angry/OAF_back_angry.wav",
        "OAF_Fear/OAF_back_fear.wav",
        "OAF_disgust/OAF_back_disgust.wav",
        "OAF_neutral/OA_bite_neutral.wav",
        "YAF_pleasant_surprise/YAF_bath_ps.wav",
        "YAF_happy/yaf_bath_HAPPY.wav",
        "YAF_sad/YAF_bath_sad.wav",
        "YAF_sad/YAF_bath.wav",
    ] {
        touch(root, name);
    }
    let source = load(root).unwrap();
    assert_eq!(source.kind, Kind::Tess);
    assert_eq!(
        summary(&source),
        vec![
            row("OAF_back_angry.wav", Anger, "tess:OAF"),
            // Speaker from the folder when the file's prefix is not OAF/YAF.
            row("OA_bite_neutral.wav", Neutral, "tess:OAF"),
            row("yaf_bath_HAPPY.wav", Happiness, "tess:YAF"),
            row("YAF_bath_ps.wav", Surprise, "tess:YAF"),
            row("YAF_bath_sad.wav", Sadness, "tess:YAF"),
        ]
    );
    assert_eq!(source.left_out, counts(&[("disgust", 1), ("fear", 1)]));
    assert_eq!(source.problems.len(), 1);
    assert!(source.problems[0].path.ends_with("YAF_bath.wav"));
}

#[test]
fn crema_d() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "AudioWAV/1001_DFA_ANG_XX.wav",
        "AudioWAV/1001_IEO_HAP_HI.wav",
        "AudioWAV/1091_TIE_NEU_XX.wav",
        "AudioWAV/1045_ITS_SAD_LO.wav",
        "AudioWAV/1045_ITS_DIS_MD.wav",
        "AudioWAV/1045_ITS_FEA_MD.wav",
        "AudioWAV/1092_ITS_SAD_LO.wav",
    ] {
        touch(root, name);
    }
    let source = load(root).unwrap();
    assert_eq!(source.kind, Kind::CremaD);
    assert_eq!(
        summary(&source),
        vec![
            row("1001_DFA_ANG_XX.wav", Anger, "cremad:1001"),
            row("1001_IEO_HAP_HI.wav", Happiness, "cremad:1001"),
            row("1045_ITS_SAD_LO.wav", Sadness, "cremad:1045"),
            row("1091_TIE_NEU_XX.wav", Neutral, "cremad:1091"),
        ]
    );
    assert_eq!(source.left_out, counts(&[("disgust", 1), ("fear", 1)]));
    // Speaker 1092 is outside CREMA-D's range.
    assert_eq!(source.problems.len(), 1);
    assert!(source.problems[0].path.ends_with("1092_ITS_SAD_LO.wav"));
}

fn shemo_tree(root: &Path) {
    for name in [
        "female/F01A01.wav",
        "female/F01W02.wav",
        "female/F01F03.wav",
        "female/F02H01.wav",
        "male/M12N03.wav",
        "male/M12S04.wav",
    ] {
        touch(root, name);
    }
}

#[test]
fn shemo_without_relabelling() {
    let dir = tempfile::tempdir().unwrap();
    shemo_tree(dir.path());
    let source = load(dir.path()).unwrap();
    assert_eq!(source.kind, Kind::Shemo);
    assert_eq!(
        summary(&source),
        vec![
            row("F01A01.wav", Anger, "shemo:F01"),
            row("F01W02.wav", Surprise, "shemo:F01"),
            row("F02H01.wav", Happiness, "shemo:F02"),
            row("M12N03.wav", Neutral, "shemo:M12"),
            row("M12S04.wav", Sadness, "shemo:M12"),
        ]
    );
    assert_eq!(source.left_out, counts(&[("fear", 1)]));
    assert!(source.problems.is_empty());
}

#[test]
fn shemo_with_modified_labels() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    shemo_tree(root);
    // F01A01 stays anger, F01W02 becomes happiness, F01F03 (fear) becomes neutral,
    // M12N03 becomes fear (left out), M12S04 gets a word serd does not know; F02H01 is not
    // listed; F05A01 is listed but absent.
    write(
        root,
        "modified_shemo.json",
        r#"{
            "F01A01.wav": {"path": "shemo/F01A01.wav", "emotion": "anger"},
            "F01W02.wav": {"path": "shemo/F01W02.wav", "emotion": "happiness"},
            "F01F03.wav": {"emotion": "N"},
            "M12N03.wav": {"emotion": "fear"},
            "M12S04.wav": {"emotion": "contempt"},
            "F05A01.wav": {"emotion": "anger"},
            "F05A02.wav": {"transcript": "no emotion here"}
        }"#,
    );
    // An older file with other labels: modified_shemo.json wins.
    write(
        root,
        "shemo.json",
        r#"[{"id": "F01A01", "emotion": "sad"}]"#,
    );
    let source = load(root).unwrap();
    assert_eq!(source.kind, Kind::Shemo);
    assert_eq!(
        summary(&source),
        vec![
            row("F01A01.wav", Anger, "shemo:F01"),
            row("F01F03.wav", Neutral, "shemo:F01"),
            row("F01W02.wav", Happiness, "shemo:F01"),
            row("F02H01.wav", Happiness, "shemo:F02"),
        ]
    );
    assert_eq!(source.left_out, counts(&[("fear", 1)]));
    assert_eq!(source.problems.len(), 1);
    assert!(source.problems[0].path.ends_with("M12S04.wav"));
    assert!(source.problems[0].error.contains("contempt"));
}

/// Symbolic links back up the tree are searched once: three of them used to make the walk
/// grow as 3^16 (a hang); now the items are those of the real folders, without problems.
#[test]
fn folder_loops_through_symbolic_links_are_searched_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "Actor_01/03-01-01-01-01-01-01.wav",
        "Actor_02/03-01-05-01-02-01-02.wav",
    ] {
        touch(root, name);
    }
    for link in ["self", "self2", "self3"] {
        std::os::unix::fs::symlink(".", root.join("Actor_01").join(link)).unwrap();
    }
    std::os::unix::fs::symlink("..", root.join("Actor_02/up")).unwrap();
    let source = load(root).unwrap();
    assert_eq!(source.items.len(), 2);
    assert!(source.problems.is_empty(), "{:?}", source.problems);
}

/// Two links to one folder (not up the tree): its files are found once.
#[test]
fn a_folder_reached_through_two_links_is_searched_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let shared = tempfile::tempdir().unwrap();
    touch(shared.path(), "03-01-01-01-01-01-01.wav");
    std::os::unix::fs::symlink(shared.path(), root.join("Actor_01")).unwrap();
    std::os::unix::fs::symlink(shared.path(), root.join("Actor_01_again")).unwrap();
    let found = scan(root).unwrap();
    assert_eq!(found.audio.len(), 1, "{:?}", found.audio);
}

/// Hidden entries are skipped (macOS's `._NAME.wav` forks, hidden folders); a folder nested
/// deeper than the limit and a broken link to an audio file are problems, not silence.
#[test]
fn walking_skips_hidden_entries_and_reports_deep_folders_and_broken_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let kept = touch(root, "Actor_01/03-01-01-01-01-01-01.wav");
    touch(root, "Actor_01/._03-01-02-01-01-01-01.wav");
    touch(root, ".cache/03-01-03-01-01-01-01.wav");
    let deep: Vec<String> = (0..MAX_DEPTH).map(|i| format!("d{i}")).collect();
    touch(
        root,
        &format!("{}/03-01-05-01-01-01-02.wav", deep.join("/")),
    );
    touch(
        root,
        &format!(
            "{}/03-01-05-01-01-01-03.wav",
            deep[..MAX_DEPTH - 1].join("/")
        ),
    );
    let broken = root.join("Actor_01/03-01-04-01-01-01-01.wav");
    std::os::unix::fs::symlink("nowhere.wav", &broken).unwrap();
    touch(root, "list.csv");
    touch(root, "Actor_01/notes.csv");

    let found = scan(root).unwrap();
    assert_eq!(
        found.audio,
        vec![
            kept,
            root.join(deep[..MAX_DEPTH - 1].join("/"))
                .join("03-01-05-01-01-01-03.wav"),
        ]
    );
    assert_eq!(found.manifests, vec![root.join("list.csv")]);
    let problems: Vec<(PathBuf, String)> = found
        .problems
        .iter()
        .map(|p| (p.path.clone(), p.error.clone()))
        .collect();
    assert_eq!(
        problems,
        vec![
            (broken, "no such file".to_string()),
            (
                root.join(deep.join("/")),
                format!("folder nested more than {MAX_DEPTH} deep; not searched")
            ),
        ]
    );
}

#[test]
fn shemo_with_original_json_array() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    shemo_tree(root);
    write(
        root,
        "shemo.json",
        r#"[{"id": "F01A01", "emotion": "sad"}, {"id": "M12S04", "emotion": "surprised"}]"#,
    );
    let source = load(root).unwrap();
    let labels: Vec<_> = summary(&source)
        .into_iter()
        .map(|(n, l, _)| (n, l))
        .collect();
    assert_eq!(
        labels,
        vec![
            ("F01A01.wav".to_string(), Sadness),
            ("F01W02.wav".to_string(), Surprise),
            ("F02H01.wav".to_string(), Happiness),
            ("M12N03.wav".to_string(), Neutral),
            ("M12S04.wav".to_string(), Surprise),
        ]
    );
}

#[test]
fn shemo_broken_json_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    shemo_tree(root);
    let json = write(root, "modified_shemo.json", "{ not json");
    let err = load(root).unwrap_err();
    assert!(matches!(&err, CorpusError::Json { path, .. } if *path == json));
    let msg = err.to_string();
    assert!(msg.contains("modified_shemo.json"), "{msg}");
    assert!(!msg.contains('\n'));

    write(
        root,
        "modified_shemo.json",
        r#"{"F01A01.wav": {"gender": "female"}}"#,
    );
    let err = load(root).unwrap_err();
    assert!(err.to_string().contains("\"emotion\""), "{err}");
}

#[test]
fn esd() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "0011/Angry/0011_000351.wav",
        "0011/Happy/train/0011_000701.wav",
        "0011/Neutral/evaluation/0011_000001.wav",
        "0011/Sad/test/0011_001051.wav",
        "0011/Surprise/0011_001401.wav",
        "0012/Angry/train/0012_000352.wav",
    ] {
        touch(root, name);
    }
    touch(root, "0011/0011.txt");
    let source = load(root).unwrap();
    assert_eq!(source.kind, Kind::Esd);
    assert_eq!(
        summary(&source),
        vec![
            row("0011_000351.wav", Anger, "esd:0011"),
            row("0011_000701.wav", Happiness, "esd:0011"),
            row("0011_000001.wav", Neutral, "esd:0011"),
            row("0011_001051.wav", Sadness, "esd:0011"),
            row("0011_001401.wav", Surprise, "esd:0011"),
            row("0012_000352.wav", Anger, "esd:0012"),
        ]
    );
    assert!(source.left_out.is_empty());
    assert!(source.problems.is_empty());

    // An emotion folder given directly works too.
    let one = load(&root.join("0011/Happy")).unwrap();
    assert_eq!(
        summary(&one),
        vec![row("0011_000701.wav", Happiness, "esd:0011")]
    );
}

#[test]
fn savee_speaker_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "AudioData/DC/a01.wav",
        "AudioData/DC/d01.wav",
        "AudioData/DC/f02.wav",
        "AudioData/JE/h03.wav",
        "AudioData/JK/n30.wav",
        "AudioData/KL/sa01.wav",
        "AudioData/KL/su15.wav",
        "AudioData/KL/s01.wav",
    ] {
        touch(root, name);
    }
    let source = load(root).unwrap();
    assert_eq!(source.kind, Kind::Savee);
    assert_eq!(
        summary(&source),
        vec![
            row("a01.wav", Anger, "savee:DC"),
            row("h03.wav", Happiness, "savee:JE"),
            row("n30.wav", Neutral, "savee:JK"),
            row("sa01.wav", Sadness, "savee:KL"),
            row("su15.wav", Surprise, "savee:KL"),
        ]
    );
    assert_eq!(source.left_out, counts(&[("disgust", 1), ("fear", 1)]));
    // There is no plain `s` prefix.
    assert_eq!(source.problems.len(), 1);
    assert!(source.problems[0].path.ends_with("s01.wav"));
}

#[test]
fn savee_flat() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "ALL/DC_a01.wav",
        "ALL/JE_sa02.wav",
        "ALL/JK_su03.wav",
        "ALL/KL_n04.wav",
        "ALL/KL_h05.wav",
        "ALL/KL_d06.wav",
    ] {
        touch(root, name);
    }
    let source = load(root).unwrap();
    assert_eq!(source.kind, Kind::Savee);
    assert_eq!(
        summary(&source),
        vec![
            row("DC_a01.wav", Anger, "savee:DC"),
            row("JE_sa02.wav", Sadness, "savee:JE"),
            row("JK_su03.wav", Surprise, "savee:JK"),
            row("KL_h05.wav", Happiness, "savee:KL"),
            row("KL_n04.wav", Neutral, "savee:KL"),
        ]
    );
    assert_eq!(source.left_out, counts(&[("disgust", 1)]));
}

#[test]
fn unrecognised_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "recordings/hello.wav");
    touch(root, "recordings/world.wav");
    touch(root, "list.csv");
    let err = load(root).unwrap_err();
    assert!(matches!(err, CorpusError::Unrecognised { .. }));
    let msg = err.to_string();
    for kind in Kind::CORPORA {
        assert!(msg.contains(kind.name()), "{msg} lacks {kind}");
    }
    assert!(msg.contains("list.csv"), "{msg}");
    assert!(msg.contains(&root.display().to_string()), "{msg}");
    assert!(!msg.contains('\n'));

    // No audio at all.
    let empty = tempfile::tempdir().unwrap();
    touch(empty.path(), "notes.txt");
    let err = load(empty.path()).unwrap_err();
    assert!(err.to_string().contains("no audio files"), "{err}");

    // A minority of corpus-named files does not make a corpus.
    let mixed = tempfile::tempdir().unwrap();
    touch(mixed.path(), "03a01Fa.wav");
    touch(mixed.path(), "a.wav");
    touch(mixed.path(), "b.wav");
    let err = load(mixed.path()).unwrap_err();
    assert!(err.to_string().contains("only 1 of its 3"), "{err}");
}

#[test]
fn majority_decides_and_outliers_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "03a01Fa.wav");
    touch(root, "03a01Wa.wav");
    touch(root, "F01A01.wav");
    let source = load(root).unwrap();
    assert_eq!(source.kind, Kind::EmoDb);
    assert_eq!(source.items.len(), 2);
    assert_eq!(source.problems.len(), 1);
    assert!(source.problems[0].error.contains("EmoDB"));
}

#[test]
fn empty_source_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "Actor_01/03-01-02-01-01-01-01.wav");
    touch(root, "Actor_01/03-01-02-01-01-02-01.wav");
    touch(root, "Actor_01/03-01-06-01-01-02-01.wav");
    let err = load(root).unwrap_err();
    assert!(matches!(
        err,
        CorpusError::Empty {
            kind: Kind::Ravdess,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(msg.contains("calm 2, fearful 1"), "{msg}");
    assert!(msg.contains("RAVDESS"), "{msg}");
}

#[test]
fn missing_and_wrong_paths() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = load(&missing).unwrap_err();
    assert!(matches!(&err, CorpusError::Missing(p) if *p == missing));
    assert!(err.to_string().contains("nope"));
    let text = touch(dir.path(), "data.txt");
    assert!(matches!(load(&text), Err(CorpusError::NotASource(_))));
    assert!(matches!(load_all(&[]), Err(CorpusError::NoSources)));
}

/// Fuzzing the manifest reader: damaged manifests load or give an error, never a panic.
#[test]
fn fuzz_damaged_manifests_load_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let base = "path,label,speaker\na.wav,anger,s1\n\"b, c.wav\", sadness ,s2\n\
                d.wav,neutral,\"s 3\"\ne.wav,fear,s1\n";
    let path = dir.path().join("corpus.csv");
    for damaged in crate::fuzz::mutants(base.as_bytes(), 3, crate::fuzz::cases(10_000)) {
        fs::write(&path, &damaged).unwrap();
        if let Ok(source) = load(&path) {
            assert!(source.items.len() <= damaged.len());
        }
    }
}

#[test]
fn manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "audio/a.wav");
    touch(root, "audio/b, with comma.wav");
    touch(root, "audio/say \"hi\".wav");
    touch(root, "audio/d.wav");
    touch(root, "audio/ends in space .wav ");
    let elsewhere = tempfile::tempdir().unwrap();
    let absolute = touch(elsewhere.path(), "e.wav");
    let csv = format!(
        "\u{feff}id,Label,path,speaker,notes\r\n\
         1,anger,audio/a.wav,spk1,x\r\n\
         2,HAPPINESS,\"audio/b, with comma.wav\",spk2,\"a, b\"\r\n\
         3,sadness,\"audio/say \"\"hi\"\".wav\",spk1,\"multi\nline\"\r\n\
         4,fear,audio/d.wav,spk2,\r\n\
         5,Fear,audio/d.wav,spk2,\r\n\
         6,neutral,audio/missing.wav,spk3,\r\n\
         \r\n\
         7,surprise,{},\" \",\r\n\
         8,,audio/d.wav,spk2,\r\n\
         9,anger, \"audio/ends in space .wav \" ,spk1,\r\n",
        absolute.display()
    );
    let manifest = write(root, "train.csv", &csv);
    let source = load(&manifest).unwrap();
    assert_eq!(source.kind, Kind::Manifest);
    assert_eq!(source.corpus, "manifest:train");
    let mut expected = vec![
        Item {
            path: root.join("audio/a.wav"),
            label: Anger,
            speaker: "manifest:train:spk1".into(),
            corpus: "manifest:train".into(),
        },
        Item {
            path: root.join("audio/b, with comma.wav"),
            label: Happiness,
            speaker: "manifest:train:spk2".into(),
            corpus: "manifest:train".into(),
        },
        Item {
            path: root.join("audio/say \"hi\".wav"),
            label: Sadness,
            speaker: "manifest:train:spk1".into(),
            corpus: "manifest:train".into(),
        },
        Item {
            // Blanks inside quotes are part of the path.
            path: root.join("audio/ends in space .wav "),
            label: Anger,
            speaker: "manifest:train:spk1".into(),
            corpus: "manifest:train".into(),
        },
        Item {
            path: absolute.clone(),
            label: Surprise,
            // No speaker on that row: the file is its own speaker.
            speaker: format!("manifest:train:{}", absolute.display()),
            corpus: "manifest:train".into(),
        },
    ];
    expected.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(source.items, expected);
    assert_eq!(source.speakerless, 1);
    assert_eq!(source.left_out, counts(&[("fear", 2)]));
    assert_eq!(source.problems.len(), 2);
    let missing = source
        .problems
        .iter()
        .find(|p| p.path == root.join("audio/missing.wav"))
        .expect("missing file reported");
    // Line 8: the quoted line break in the third row takes a line.
    assert!(missing.error.contains("no such file"), "{}", missing.error);
    assert!(missing.error.contains("line 8"), "{}", missing.error);
    let no_label = source
        .problems
        .iter()
        .find(|p| p.path == manifest)
        .expect("empty label reported");
    assert!(no_label.error.contains("line 11"), "{}", no_label.error);
}

#[test]
fn manifest_without_speaker_column() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "x/one.wav");
    touch(root, "x/two.wav");
    let manifest = write(
        root,
        "set.csv",
        "label,path\nneutral,x/one.wav\nsurprise,x/two.wav\ncalm,x/three.wav\n",
    );
    let source = load(&manifest).unwrap();
    assert_eq!(
        summary(&source),
        vec![
            row("one.wav", Neutral, "manifest:set:x/one.wav"),
            row("two.wav", Surprise, "manifest:set:x/two.wav"),
        ]
    );
    assert_eq!(source.speakerless, 2);
    // A left-out label is counted, not checked for existence.
    assert_eq!(source.left_out, counts(&[("calm", 1)]));
    assert!(source.problems.is_empty());
}

#[test]
fn manifest_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let no_label = write(root, "a.csv", "path,speaker\nx.wav,1\n");
    let err = load(&no_label).unwrap_err();
    assert!(matches!(
        &err,
        CorpusError::MissingColumn { path, column: "label", .. } if *path == no_label
    ));
    let msg = err.to_string();
    assert!(msg.contains("a.csv") && msg.contains("\"label\""), "{msg}");

    let no_path = write(root, "b.csv", "file,label\nx.wav,anger\n");
    assert!(matches!(
        load(&no_path),
        Err(CorpusError::MissingColumn { column: "path", .. })
    ));

    let empty = write(root, "c.csv", "\n\n");
    assert!(matches!(load(&empty), Err(CorpusError::Manifest { .. })));

    let latin1 = root.join("f.csv");
    fs::write(&latin1, b"path,label\nok.wav,anger\ncaf\xe9.wav,anger\n").unwrap();
    let err = load(&latin1).unwrap_err().to_string();
    assert!(
        err.contains("f.csv") && err.contains("line 3: not UTF-8"),
        "{err}"
    );

    let unterminated = write(root, "d.csv", "path,label\n\"x.wav,anger\n");
    let err = load(&unterminated).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");

    // Header only: nothing to use.
    let header_only = write(root, "e.csv", "path,label\n");
    let err = load(&header_only).unwrap_err();
    assert!(matches!(
        err,
        CorpusError::Empty {
            kind: Kind::Manifest,
            ..
        }
    ));
    assert!(err.to_string().contains("lists no files"), "{err}");

    // Only missing files.
    let all_missing = write(root, "f.csv", "path,label\nx.wav,anger\n");
    let err = load(&all_missing).unwrap_err();
    assert!(err.to_string().contains("no such file"), "{err}");
}

#[test]
fn csv_parser() {
    let records = parse_csv("a,\"b,c\",\"d\"\"e\"\r\n\"x\ny\",,z\rlast").unwrap();
    assert_eq!(
        records,
        vec![
            (1, vec!["a".into(), "b,c".into(), "d\"e".into()]),
            (2, vec!["x\ny".into(), String::new(), "z".into()]),
            (4, vec!["last".into()]),
        ]
    );
    // A quote inside an unquoted field is text; an empty quoted field is empty.
    assert_eq!(
        parse_csv("5\" disk,\"\"\n").unwrap(),
        vec![(1, vec!["5\" disk".into(), String::new()])]
    );
    assert_eq!(parse_csv("").unwrap(), Vec::<(usize, Vec<String>)>::new());
    // Blanks around a field are dropped; inside quotes they are part of the value.
    assert_eq!(
        parse_csv(" a b , \"  c d \" ,\" e\"x \n").unwrap(),
        vec![(1, vec!["a b".into(), "  c d ".into(), " ex".into()])]
    );
    assert!(parse_csv("a\n\"b").unwrap_err().contains("line 2"));
}

#[test]
fn combining_sources() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ravdess = root.join("ravdess");
    touch(&ravdess, "Actor_01/03-01-01-01-01-01-01.wav");
    touch(&ravdess, "Actor_01/03-01-02-01-01-01-01.wav");
    touch(&ravdess, "Actor_03/03-01-05-01-01-01-03.wav");
    let emodb = root.join("emodb");
    touch(&emodb, "wav/01a01Wa.wav");
    touch(&emodb, "wav/03a01Fa.wav");
    // A manifest that lists one EmoDB file again, with another label, plus one of its own.
    touch(root, "extra/z.wav");
    let manifest = write(
        root,
        "extra.csv",
        "path,label,speaker\nemodb/wav/03a01Fa.wav,sadness,01\nextra/z.wav,neutral,01\n",
    );
    let data = load_all(&[ravdess.clone(), emodb.clone(), manifest.clone()]).unwrap();
    let got: Vec<(PathBuf, Emotion, &str)> = data
        .items
        .iter()
        .map(|i| (i.path.clone(), i.label, i.speaker.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (emodb.join("wav/01a01Wa.wav"), Anger, "emodb:01"),
            (emodb.join("wav/03a01Fa.wav"), Happiness, "emodb:03"),
            (root.join("extra/z.wav"), Neutral, "manifest:extra:01"),
            (
                ravdess.join("Actor_01/03-01-01-01-01-01-01.wav"),
                Neutral,
                "ravdess:01"
            ),
            (
                ravdess.join("Actor_03/03-01-05-01-01-01-03.wav"),
                Anger,
                "ravdess:03"
            ),
        ]
    );
    // Speaker "01" of three corpora: three people.
    assert_eq!(data.speakers(), 5);
    assert_eq!(data.sources.len(), 3);
    assert_eq!(
        data.sources.iter().map(|s| s.kind).collect::<Vec<_>>(),
        vec![Kind::Ravdess, Kind::EmoDb, Kind::Manifest]
    );
    assert_eq!(data.sources[0].items, 2);
    assert_eq!(data.sources[0].speakers, 2);
    assert_eq!(data.sources[2].items, 1);
    assert_eq!(data.left_out(), counts(&[("calm", 1)]));
    let counts = data.counts();
    assert_eq!(counts[&Anger], 2);
    assert_eq!(counts[&Neutral], 2);
    assert_eq!(counts[&Happiness], 1);
    assert!(!counts.contains_key(&Sadness));
    let dup: Vec<&Skipped> = data.problems().collect();
    assert_eq!(dup.len(), 1);
    assert!(dup[0].error.contains("happiness"), "{}", dup[0].error);
    // The summary is what a model card records.
    let json = serde_json::to_value(&data.sources[1]).unwrap();
    assert_eq!(json["kind"], "emodb");
    assert_eq!(json["counts"]["anger"], 1);
}

#[test]
fn real_corpora() {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora");
    if !corpora.is_dir() {
        eprintln!("skipped: {} is absent", corpora.display());
        return;
    }
    let ravdess = load(&corpora.join("ravdess")).unwrap();
    assert_eq!(ravdess.kind, Kind::Ravdess);
    assert_eq!(ravdess.items.len(), 720);
    assert!(ravdess.problems.is_empty(), "{:?}", ravdess.problems);
    let summary = ravdess.summary();
    assert_eq!(summary.speakers, 20);
    let expected: BTreeMap<Emotion, usize> = [
        (Neutral, 80),
        (Happiness, 160),
        (Sadness, 160),
        (Anger, 160),
        (Surprise, 160),
    ]
    .into();
    assert_eq!(summary.counts, expected);

    let emodb = load(&corpora.join("emodb")).unwrap();
    assert_eq!(emodb.kind, Kind::EmoDb);
    assert_eq!(emodb.items.len(), 339);
    assert!(emodb.problems.is_empty(), "{:?}", emodb.problems);
    let summary = emodb.summary();
    assert_eq!(summary.speakers, 10);
    let expected: BTreeMap<Emotion, usize> =
        [(Anger, 127), (Happiness, 71), (Sadness, 62), (Neutral, 79)].into();
    assert_eq!(summary.counts, expected);

    let both = load_all(&[corpora.join("ravdess"), corpora.join("emodb")]).unwrap();
    assert_eq!(both.items.len(), 1059);
    assert_eq!(both.speakers(), 30);
}
