//! `serd train`, `eval` and `predict` end to end on a small synthetic corpus: five "emotions" that
//! differ in pitch, contour and level, spoken by four "speakers" whose voices differ in pitch, as
//! a CSV manifest. A working pipeline separates them; a broken one (labels shuffled, scaler
//! or folds wrong) does not.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::common::{json_lines, serd, serd_full, text, Wav};

/// (base F0 Hz, F0 glide over the file as a factor, amplitude, vibrato depth).
fn voice(emotion: &str) -> (f64, f64, f64, f64) {
    match emotion {
        "anger" => (240.0, 1.0, 0.6, 0.0),
        "surprise" => (200.0, 2.0, 0.4, 0.0),
        "happiness" => (300.0, 1.0, 0.35, 0.08),
        "sadness" => (110.0, 0.9, 0.08, 0.0),
        _ => (160.0, 1.0, 0.2, 0.0),
    }
}

fn utterance(emotion: &str, speaker: usize, take: usize) -> Vec<f64> {
    let (f0, glide, amp, vibrato) = voice(emotion);
    let f0 = f0 * (1.0 + 0.04 * speaker as f64) * (1.0 + 0.01 * take as f64);
    let rate = 16_000.0;
    let n = (1.2 * rate) as usize;
    let mut phase = 0.0f64;
    let mut noise = 0x2545_F491_4F6C_DD1Du64 ^ (speaker * 97 + take) as u64;
    (0..n)
        .map(|i| {
            let t = i as f64 / n as f64;
            let f = f0
                * (1.0 + (glide - 1.0) * t)
                * (1.0 + vibrato * (2.0 * std::f64::consts::PI * 5.0 * t * 1.2).sin());
            phase += 2.0 * std::f64::consts::PI * f / rate;
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let n = (noise as f64 / u64::MAX as f64 - 0.5) * 0.01;
            amp * (0.6 * phase.sin() + 0.3 * (2.0 * phase).sin() + 0.1 * (3.0 * phase).sin()) + n
        })
        .collect()
}

/// Writes the corpus and its manifest; returns the manifest's path.
fn corpus(dir: &Path) -> std::path::PathBuf {
    let mut manifest = String::from("path,label,speaker\n");
    for speaker in 0..4 {
        for emotion in ["anger", "surprise", "happiness", "sadness", "neutral"] {
            for take in 0..3 {
                let name = format!("s{speaker}_{emotion}_{take}.wav");
                std::fs::write(
                    dir.join(&name),
                    Wav::pcm16(16_000, 1).encode(&utterance(emotion, speaker, take)),
                )
                .unwrap();
                writeln!(manifest, "{name},{emotion},s{speaker}").unwrap();
            }
        }
    }
    // A label outside the five classes is counted and left out; a broken file is skipped.
    std::fs::write(
        dir.join("fear.wav"),
        Wav::pcm16(16_000, 1).encode(&utterance("neutral", 0, 9)),
    )
    .unwrap();
    manifest.push_str("fear.wav,fear,s0\n");
    std::fs::write(dir.join("broken.wav"), b"RIFF....WAVEfmt nonsense").unwrap();
    manifest.push_str("broken.wav,anger,s1\n");
    let path = dir.join("corpus.csv");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// `serd predict --backend cpu --model MODEL ARGS...`, which must succeed: its lines.
fn predict(model: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["predict", "--backend", "cpu", "--model", model];
    all.extend_from_slice(args);
    let out = serd(&all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    json_lines(&out.stdout)
}

#[test]
fn train_eval_predict_on_a_separable_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = corpus(dir.path());
    let model = dir.path().join("model");
    let cache = dir.path().join("cache");
    let (m, c, o) = (
        manifest.to_str().unwrap(),
        cache.to_str().unwrap(),
        model.to_str().unwrap(),
    );
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            m,
            "--out",
            o,
            "--cache",
            c,
            "--folds",
            "2",
            "--epochs",
            "60",
            "--backend",
            "cpu",
            "--window",
            "whole",
        ];
        args.extend_from_slice(extra);
        serd(&args)
    };
    let out = train(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Said as the run starts, before the first fold.
    let stderr = text(&out.stderr);
    let warned = stderr
        .find("listen needs a model of windows")
        .expect(&stderr);
    assert!(
        stderr.find("fold").is_none_or(|fold| warned < fold),
        "{stderr}"
    );
    // stderr is not a terminal here: progress comes as lines, without -v.
    for step in [
        "cross-validation, fold 1/2",
        "final model, members trained: done",
    ] {
        assert!(stderr.contains(step), "no {step:?} in {stderr}");
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["n"], 60,
        "60 usable files: the fear file is left out, the broken one skipped"
    );
    // listen refuses the whole-file model in one line that says what makes one it can use.
    let clip = dir.path().join("s0_anger_0.wav");
    let refused = serd(&[
        "listen",
        "--backend",
        "cpu",
        "--model",
        o,
        "--input",
        clip.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    let stderr = text(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("classifies whole files") && stderr.contains("--window"),
        "{stderr}"
    );
    assert!(
        report["uar"].as_f64().unwrap() > 0.8,
        "separable classes, speaker-independent: {report}"
    );
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("broken.wav"));
    for file in [
        "model.json",
        "weights-0.bpk",
        "metrics.json",
        "confusion.png",
        "MODEL_CARD.md",
    ] {
        assert!(model.join(file).is_file(), "{file} written");
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["data"]["left_out"]["fear"], 1);
    // The card states metrics.json's figures: the pooled row, the per-class recall, the data.
    let card = std::fs::read_to_string(model.join("MODEL_CARD.md")).unwrap();
    let pct = |v: &serde_json::Value| format!("{:.1} %", v.as_f64().unwrap() * 100.0);
    let pooled = &metrics["cv"]["utterance"];
    let row = format!(
        "| utterance (pooled) | 60 | {} | {} |",
        pct(&pooled["accuracy"]),
        pct(&pooled["uar"])
    );
    assert!(card.contains(&row), "{row} not in {card}");
    let recall = format!("sadness {}", pct(&pooled["recall"]["sadness"]));
    assert!(card.contains(&recall), "{recall} not in {card}");
    // (61 files in the source, the broken one among them; one could not be used.)
    assert!(
        card.contains(&format!("| {m} | manifest | 61 | 4 |")),
        "{card}"
    );
    assert!(card.contains("1 file could not be used"), "{card}");
    // Speaker-grouped folds: every speaker's files are in one fold.
    let mut fold_of = std::collections::BTreeMap::new();
    for a in metrics["cv"]["assignment"].as_array().unwrap() {
        let prev = fold_of.insert(
            a["speaker"].as_str().unwrap().to_string(),
            a["fold"].as_u64().unwrap(),
        );
        assert!(
            prev.is_none_or(|p| p == a["fold"].as_u64().unwrap()),
            "a speaker in two folds"
        );
    }
    // Every file's cross-validated prediction is recorded: together they are the pooled matrix.
    let classes = ["anger", "surprise", "happiness", "sadness", "neutral"];
    let index = |v: &serde_json::Value| classes.iter().position(|c| v == c).unwrap();
    let mut matrix = vec![vec![0u64; 5]; 5];
    for a in metrics["cv"]["assignment"].as_array().unwrap() {
        matrix[index(&a["label"])][index(&a["predicted"])] += 1;
    }
    assert_eq!(
        serde_json::json!(matrix),
        metrics["cv"]["utterance"]["confusion"]["matrix"]
    );
    assert_eq!(metrics["timing_s"]["cache_hits"], 0);

    // Same seed, cached features: the same figures, all from the cache. The new model replaces
    // the old folder whole: a file of an older, larger model does not survive beside it.
    std::fs::write(model.join("weights-7.bpk"), b"an older model's").unwrap();
    let again = train(&[]);
    assert!(!model.join("weights-7.bpk").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.contains("partial").then_some(name)
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(again.stdout, out.stdout, "reproducible on the CPU backend");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["timing_s"]["cache_hits"], 60, "every usable file");

    // eval: the final model on the same data (seen in training, so near-perfect).
    let eval_args = [
        "eval",
        "--backend",
        "cpu",
        "--model",
        o,
        "--data",
        m,
        "--cache",
        c,
    ];
    let out = serd(&eval_args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(eval["n"], 60);
    assert!(eval["uar"].as_f64().unwrap() > 0.9, "{eval}");
    assert_eq!(eval["confusion"]["labels"][0], "anger");

    // Output that cannot be written: a full stdout is one clear error and status 1; a full stderr
    // loses only the messages, never the result.
    let out = serd_full(&eval_args, true, false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let last = text(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(last.contains("writing to stdout"), "{last}");
    let out = serd_full(&eval_args, false, true);
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(json_lines(&out.stdout)[0]["n"], 60);
    let figures = dir.path().join("figures");
    let args = small_training(&manifest, &figures, &cache, &["--no-final"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = serd_full(&args, true, false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("writing to stdout"));

    // predict: one JSON object per file, in order; a bad file is one line and status 1.
    let sad = dir.path().join("s3_sadness_1.wav");
    let angry = dir.path().join("s2_anger_0.wav");
    let lines = predict(o, &[sad.to_str().unwrap(), angry.to_str().unwrap()]);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["label"], "sadness");
    assert_eq!(lines[1]["label"], "anger");
    let probs = lines[0]["probs"].as_object().unwrap();
    assert_eq!(
        probs.keys().collect::<Vec<_>>(),
        ["anger", "surprise", "happiness", "sadness", "neutral"]
    );
    assert!((probs.values().map(|p| p.as_f64().unwrap()).sum::<f64>() - 1.0).abs() < 1e-4);
    assert_eq!(lines[0]["confidence"], probs["sadness"]);
    let out = serd(&[
        "predict",
        "--backend",
        "cpu",
        "--model",
        o,
        dir.path().join("broken.wav").to_str().unwrap(),
        sad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 1);
    assert_eq!(
        text(&out.stderr)
            .lines()
            .filter(|l| l.contains("broken.wav"))
            .count(),
        1
    );
}

/// Files a manifest gives no speaker are groups of their own, so their speakers can straddle the
/// folds: metrics.json and the card must not call such figures speaker-independent.
#[test]
fn files_without_a_speaker_are_not_called_speaker_independent() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = corpus(dir.path());
    let text_of = std::fs::read_to_string(&manifest).unwrap();
    // Speaker s3's 15 rows lose their speaker.
    let anonymous = text_of.replace(",s3\n", ",\n");
    assert_eq!(anonymous.matches(",\n").count(), 15);
    std::fs::write(&manifest, anonymous).unwrap();
    let out_dir = dir.path().join("figures");
    let args = small_training(
        &manifest,
        &out_dir,
        &dir.path().join("cache"),
        &["--no-final"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = serd(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("15 files have no speaker"),
        "{}",
        text(&out.stderr)
    );
    let metrics = model_json(&out_dir, "metrics.json");
    assert_eq!(metrics["protocol"]["grouping"], "speaker");
    assert_eq!(metrics["protocol"]["speaker_independent"], false);
    assert_eq!(metrics["data"]["sources"][0]["speakerless"], 15);
    let card = std::fs::read_to_string(out_dir.join("MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("15 files have no speaker") && !card.contains("no speaker is in both"),
        "{card}"
    );
}

/// `train`'s defaults make a model of 2 s windows every 1 s, which `listen` takes; and such a
/// model still judges recordings shorter than a window (the corpus's are 1.2 s), by the
/// functionals of all of each: in training, in eval, in predict and in listen.
#[test]
fn default_windows_serve_listen_and_short_recordings_are_judged_whole() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = corpus(dir.path());
    let model = dir.path().join("model");
    let (m, o) = (manifest.to_str().unwrap(), model.to_str().unwrap());
    let cache = dir.path().join("cache");
    let out = serd(&[
        "train",
        "--data",
        m,
        "--out",
        o,
        "--cache",
        cache.to_str().unwrap(),
        "--folds",
        "2",
        "--epochs",
        "60",
        "--backend",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("--window whole"));
    let info = model_json(&model, "model.json");
    assert_eq!(
        (info["window_s"].as_f64(), info["hop_s"].as_f64()),
        (Some(2.0), Some(1.0))
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["n"], 60, "no file left out as short: {report}");
    assert!(report["uar"].as_f64().unwrap() > 0.8, "{report}");
    let sad = dir.path().join("s3_sadness_1.wav");
    let lines = predict(o, &["--windows", sad.to_str().unwrap()]);
    assert_eq!(lines.len(), 1, "one window, the whole file: {lines:?}");
    assert_eq!(lines[0]["t_start"], 0.0);
    assert!(
        (lines[0]["t_end"].as_f64().unwrap() - 1.2).abs() < 1e-3,
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["label"], "sadness");
    let listened = serd(&[
        "listen",
        "--backend",
        "cpu",
        "--model",
        o,
        "--input",
        sad.to_str().unwrap(),
    ]);
    assert!(listened.status.success(), "{}", text(&listened.stderr));
    let events = json_lines(&listened.stdout);
    let verdicts: Vec<_> = events.iter().filter(|e| e["type"] == "emotion").collect();
    assert_eq!(verdicts.len(), 1, "{events:?}");
    assert_eq!(verdicts[0]["label"], "sadness");
}

/// The wgpu backend (a GPU, or Mesa's lavapipe on CPU-only machines: CI installs it) gives the
/// CPU backend's probabilities within 1e-4. Without any wgpu adapter this says so and checks that
/// `--backend wgpu` fails with one clear line instead.
#[test]
fn wgpu_and_cpu_backends_agree() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = corpus(dir.path());
    let model = dir.path().join("model");
    let o = model.to_str().unwrap();
    let cache = dir.path().join("cache");
    let out = serd(&[
        "train",
        "--data",
        manifest.to_str().unwrap(),
        "--out",
        o,
        "--folds",
        "2",
        "--epochs",
        "5",
        "--backend",
        "cpu",
        "--cache",
        cache.to_str().unwrap(),
        "--window",
        "whole",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files: Vec<String> = ["s0_anger_0.wav", "s1_sadness_2.wav", "s3_surprise_1.wav"]
        .iter()
        .map(|f| dir.path().join(f).display().to_string())
        .collect();
    let predict = |backend: &str| {
        let mut args = vec!["predict", "--backend", backend, "--model", o];
        args.extend(files.iter().map(String::as_str));
        serd(&args)
    };
    let gpu = predict("wgpu");
    if !gpu.status.success() {
        let stderr = text(&gpu.stderr);
        assert!(stderr.contains("no wgpu adapter"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        crate::common::prerequisite_missing(&format!("no wgpu adapter ({})", stderr.trim()));
        return;
    }
    let cpu = predict("cpu");
    assert!(cpu.status.success(), "{}", text(&cpu.stderr));
    let (gpu, cpu) = (json_lines(&gpu.stdout), json_lines(&cpu.stdout));
    assert_eq!(gpu.len(), 3);
    for (g, c) in gpu.iter().zip(&cpu) {
        assert_eq!(g["label"], c["label"]);
        for (name, p) in c["probs"].as_object().unwrap() {
            let diff = (p.as_f64().unwrap() - g["probs"][name].as_f64().unwrap()).abs();
            assert!(diff < 1e-4, "{}: {name} differs by {diff}", c["file"]);
        }
    }
}

#[test]
fn bad_training_requests_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let o = out_dir.to_str().unwrap();
    // Status 1: the request cannot be carried out on this data; 2: a value on the command line
    // is not allowed (as for the values clap refuses itself).
    let one_line_status = |args: &[&str], needle: &str, status: i32| {
        let out = serd(args);
        assert_eq!(out.status.code(), Some(status), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.lines().any(|l| l.contains(needle)),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let one_line = |args: &[&str], needle: &str| one_line_status(args, needle, 1);
    // A manifest without a label column.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "path,speaker\na.wav,s1\n").unwrap();
    one_line(
        &["train", "--data", bad.to_str().unwrap(), "--out", o],
        "label",
    );
    // --out is replaced whole: a folder of other things is refused, and so is a model's folder
    // when --no-final would leave figures without their model.
    let refused = |out: &Path, extra: &str, needle: &str| {
        let (data, out) = (bad.to_str().unwrap(), out.to_str().unwrap());
        let mut args = vec!["train", "--data", data, "--out", out];
        args.extend(Some(extra).filter(|e| !e.is_empty()));
        one_line(&args, needle);
    };
    let elsewhere = dir.path().join("papers");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("thesis.tex"), "precious").unwrap();
    refused(&elsewhere, "", "holds files but no serd model");
    assert!(elsewhere.join("thesis.tex").exists());
    let modelled = dir.path().join("modelled");
    std::fs::create_dir(&modelled).unwrap();
    std::fs::write(modelled.join("model.json"), "{}").unwrap();
    refused(&modelled, "--no-final", "--no-final");
    // A missing source.
    one_line(
        &["train", "--data", "/nonexistent/corpus", "--out", o],
        "/nonexistent/corpus",
    );
    // One speaker with speaker-grouped folds; fewer files than folds.
    let wav = Wav::pcm16(16_000, 1).encode(&utterance("anger", 0, 0));
    let mut manifest = String::from("path,label,speaker\n");
    for i in 0..6 {
        std::fs::write(dir.path().join(format!("f{i}.wav")), &wav).unwrap();
        writeln!(manifest, "f{i}.wav,anger,only").unwrap();
    }
    let single = dir.path().join("single.csv");
    std::fs::write(&single, manifest).unwrap();
    let cache = dir.path().join("cache");
    let (s, c) = (single.to_str().unwrap(), cache.to_str().unwrap());
    // `serd train` on a manifest, with the shared cache and the CPU backend.
    let train_status = |data: &str, extra: &[&str], needle: &str, status: i32| {
        let mut args = vec![
            "train",
            "--data",
            data,
            "--out",
            o,
            "--cache",
            c,
            "--backend",
            "cpu",
            "--window",
            "whole",
        ];
        args.extend_from_slice(extra);
        one_line_status(&args, needle, status);
    };
    let train = |data: &str, extra: &[&str], needle: &str| train_status(data, extra, needle, 1);
    let not_allowed = |extra: &[&str], needle: &str| train_status(s, extra, needle, 2);
    train(s, &[], "--grouping none");
    train(
        s,
        &["--grouping", "none", "--folds", "10"],
        "needs at least 10 files",
    );
    // Three speakers in two folds: one fold trains on a single speaker, leaving none to hold
    // out for early stopping; the advice is more folds, not fewer.
    let mut manifest = String::from("path,label,speaker\n");
    for i in 0..6 {
        writeln!(manifest, "f{i}.wav,anger,s{}", i / 2).unwrap();
    }
    let three = dir.path().join("three.csv");
    std::fs::write(&three, manifest).unwrap();
    train(
        three.to_str().unwrap(),
        &["--folds", "2"],
        "use more --folds",
    );
    // A learning rate that is not a positive number.
    not_allowed(&["--learning-rate", "nan"], "--learning-rate");
    // A learning rate so large that training diverges: an error, not a saved random network.
    train(
        s,
        &[
            "--grouping",
            "none",
            "--folds",
            "2",
            "--epochs",
            "2",
            "--learning-rate",
            "1e30",
        ],
        "training diverged",
    );
    // Label smoothing of 1 would leave no signal in the targets.
    not_allowed(&["--label-smoothing", "1"], "--label-smoothing");
    // Dropout of every channel, or not a number.
    not_allowed(&["--dropout", "1"], "--dropout");
    not_allowed(&["--dropout", "nan"], "--dropout");
    not_allowed(&["--weight-decay", "-0.1"], "--weight-decay");
    not_allowed(&["--weight-decay", "inf"], "--weight-decay");
    not_allowed(&["--blocks", "3"], "--blocks");
    not_allowed(&["--linear-penalty", "-1"], "--linear-penalty");
    not_allowed(&["--linear", "65"], "--linear");
    // A noise floor above the speech level; a condition that does not parse.
    not_allowed(&["--floor", "-10"], "--floor");
    not_allowed(&["--test-condition", "white:loud"], "white:loud");
    // Counts that must be positive, each named; too few folds.
    for flag in ["--epochs", "--batch", "--ensemble"] {
        not_allowed(&[flag, "0"], &format!("{flag} must be at least 1"));
    }
    not_allowed(&["--folds", "1"], "--folds must be at least 2");
    // Evaluation where no file can be read: the report, then an error.
    let unreadable = dir.path().join("unreadable.csv");
    std::fs::write(dir.path().join("text.wav"), "not audio\n".repeat(50)).unwrap();
    std::fs::write(&unreadable, "path,label,speaker\ntext.wav,anger,s1\n").unwrap();
    let eval = ["eval", "--data", unreadable.to_str().unwrap(), "--cache", c];
    one_line(&eval, "could be evaluated");
    // ... whose report has no figures, calibration error included.
    let report: serde_json::Value = serde_json::from_slice(&serd(&eval).stdout).unwrap();
    assert!(
        report["uar"].is_null() && report["ece"].is_null(),
        "{report}"
    );
    // A model directory that is not one.
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("model.json"), "{not json").unwrap();
    one_line(
        &[
            "predict",
            "--model",
            o,
            dir.path().join("f0.wav").to_str().unwrap(),
        ],
        "model.json",
    );
    // --model naming a file, or nothing: said in those words, not as an OS error on model.json.
    let audio = dir.path().join("f0.wav");
    let audio = audio.to_str().unwrap();
    one_line(
        &["predict", "--model", audio, audio],
        "f0.wav: not a model directory",
    );
    let missing = dir.path().join("no-such-model");
    one_line(
        &["predict", "--model", missing.to_str().unwrap(), audio],
        "no-such-model: no such model directory",
    );
    // Damaged copies of the bundled model: one line naming what is wrong, never a panic or a
    // prediction made of NaN.
    let wav = dir.path().join("f0.wav");
    let damaged = |name: &str, damage: &dyn Fn(&Path, &mut serde_json::Value)| {
        let copy = dir.path().join(name);
        std::fs::create_dir_all(&copy).unwrap();
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
        for entry in std::fs::read_dir(&bundled).unwrap() {
            let entry = entry.unwrap().path();
            std::fs::copy(&entry, copy.join(entry.file_name().unwrap())).unwrap();
        }
        let info = copy.join("model.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&info).unwrap()).unwrap();
        damage(&copy, &mut json);
        std::fs::write(&info, json.to_string()).unwrap();
        let dir = copy.to_str().unwrap().to_string();
        one_line(&["predict", "--model", &dir, wav.to_str().unwrap()], name);
    };
    damaged("stride_0", &|_, j| j["model"]["stride"] = 0.into());
    damaged("negative_window", &|_, j| j["window_s"] = (-2.0).into());
    damaged("zero_deviation", &|_, j| j["scaler"]["std"][3] = 0.0.into());
    damaged("zero_temperature", &|_, j| j["temperature"] = 0.0.into());
    damaged("negative_novelty", &|_, j| j["novelty"] = (-1.0).into());
    damaged("loud_floor", &|_, j| {
        j["front_end"] = serde_json::json!({"level_dbfs": -20.0, "floor_dbfs": 0.0})
    });
    // Sizes beyond any model serd trains are refused before anything is allocated; sizes that
    // disagree with the weights file, before burn reads it.
    damaged("huge_pool", &|_, j| {
        j["model"]["pool"] = 1_000_000_000.into()
    });
    damaged("huge_filters", &|_, j| {
        j["model"]["filters"] = 100_000_000.into()
    });
    damaged("wider_filters", &|_, j| j["model"]["filters"] = 256.into());
    damaged("huge_ensemble", &|_, j| j["members"] = 1_000_000.into());
    damaged("huge_linear", &|_, j| j["linear"] = 1_000_000.into());
    // A linear member more than there are weights files for.
    damaged("missing_member", &|_, j| {
        let more = j["linear"].as_u64().unwrap_or(0) + 1;
        j["linear"] = more.into();
    });
    damaged("newer_format", &|_, j| j["format"] = 3.into());
    // One changed byte in the weights: the checksum in model.json no longer matches.
    damaged("flipped_byte", &|dir, _| {
        let weights = dir.join("weights-1.bpk");
        let mut bytes = std::fs::read(&weights).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&weights, bytes).unwrap();
    });
    damaged("nan_weights", &|dir, j| {
        // (Without a checksum to give it away, as in models written before serd kept them.)
        j.as_object_mut().unwrap().remove("checksums");
        // All-ones bits are a NaN in every float format: the end of the file is tensor data.
        let weights = dir.join("weights-0.bpk");
        let mut bytes = std::fs::read(&weights).unwrap();
        let n = bytes.len();
        bytes[n - 4096..].fill(0xff);
        std::fs::write(&weights, bytes).unwrap();
    });
}

/// Augmented training with test conditions: the conditions' figures, the calibration and the
/// front end reach metrics.json, model.json, the card and the reliability diagram, and every
/// conditioned copy is cached.
#[test]
fn augmented_training_reports_conditions_and_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = corpus(dir.path());
    let model = dir.path().join("model");
    let cache = dir.path().join("cache");
    let args = small_training(
        &manifest,
        &model,
        &cache,
        &[
            "--augment",
            "1",
            "--voice-perturbation",
            "1",
            "--test-condition",
            "white:20",
            "--test-condition",
            "telephone",
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = serd(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("telephone:mulaw"), "{stderr}");
    let metrics = model_json(&model, "metrics.json");
    assert_eq!(metrics["protocol"]["augment"], 1);
    assert_eq!(metrics["protocol"]["voice_perturbation"], 1.0);
    let conditions = metrics["cv"]["conditions"].as_array().unwrap();
    let names: Vec<&str> = conditions
        .iter()
        .map(|c| c["condition"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["white:20", "telephone:mulaw"]);
    for c in conditions {
        assert_eq!(c["utterance"]["n"], 60, "{c}");
    }
    let calibration = &metrics["cv"]["calibration"];
    let t = calibration["temperature"].as_f64().unwrap();
    assert!(t > 0.0);
    for level in ["window_before", "window_after", "utterance_after"] {
        let ece = calibration[level]["ece"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ece), "{level}: {ece}");
    }
    // Each level has its own temperature, recorded in model.json and named in the card.
    let t_file = calibration["file_temperature"].as_f64().unwrap();
    assert!(t_file > 0.0);
    let info = model_json(&model, "model.json");
    assert!((info["temperature"].as_f64().unwrap() - t).abs() < 1e-6);
    assert!((info["file_temperature"].as_f64().unwrap() - t_file).abs() < 1e-6);
    assert!(info["novelty"].as_f64().unwrap() > 0.0);
    assert_eq!(info["front_end"]["level_dbfs"], -20.0);
    assert!(model.join("reliability.png").is_file());
    let card = std::fs::read_to_string(model.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("| white:20 | 60 |"), "{card}");
    assert!(card.contains(&format!("T = {t:.2}")), "{card}");
    assert!(card.contains(&format!("T = {t_file:.2}")), "{card}");

    // Again: every file and every conditioned copy comes from the cache.
    let again = serd(&args);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(again.stdout, out.stdout, "reproducible");
    assert_eq!(
        model_json(&model, "metrics.json")["timing_s"]["cache_hits"],
        60 * 4
    );
}

/// Two corpora (the synthetic corpus's speakers split into two manifests): each is held out in
/// turn and scored by a model trained on the other, and the figures reach metrics.json, the card
/// and the PNGs; `eval` on training data says so and gives the figures without it.
#[test]
fn corpora_are_held_out_in_turn_and_eval_knows_the_training_data() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(corpus(dir.path())).unwrap();
    let (header, rows) = manifest.split_once('\n').unwrap();
    let part = |name: &str, speakers: &[&str]| {
        let mut text = format!("{header}\n");
        for row in rows.lines() {
            if speakers.iter().any(|s| row.ends_with(&format!(",{s}"))) {
                writeln!(text, "{row}").unwrap();
            }
        }
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (a, b) = (part("a.csv", &["s0", "s1"]), part("b.csv", &["s2", "s3"]));
    let model = dir.path().join("model");
    let mut args = small_training(
        &a,
        &model,
        &dir.path().join("cache"),
        &["--balance", "corpus", "--data"],
    );
    args.push(b.display().to_string());
    let out = serd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("held-out corpus"),
        "{}",
        text(&out.stderr)
    );
    let metrics = model_json(&model, "metrics.json");
    assert_eq!(metrics["protocol"]["held_out_corpora"], true);
    assert_eq!(metrics["protocol"]["fit"]["balance"], "corpus");
    let corpora = &metrics["corpus_cv"];
    let folds = corpora["folds"].as_array().unwrap();
    let held_out: Vec<&str> = folds
        .iter()
        .map(|f| f["held_out"].as_str().unwrap())
        .collect();
    assert_eq!(held_out, ["manifest:a", "manifest:b"]);
    for f in folds {
        assert_eq!(f["test_files"], 30, "{f}");
        assert_eq!(f["test_speakers"], 2, "{f}");
        assert!(f["uar"].as_f64().unwrap() > 0.8, "{f}");
    }
    let mean = (folds[0]["uar"].as_f64().unwrap() + folds[1]["uar"].as_f64().unwrap()) / 2.0;
    assert!((corpora["uar"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    // Every file is held out once, by the model of the other corpus.
    for row in corpora["assignment"].as_array().unwrap() {
        let in_a = row["path"].as_str().unwrap().contains("/s0_")
            || row["path"].as_str().unwrap().contains("/s1_");
        assert_eq!(row["fold"], if in_a { 0 } else { 1 }, "{row}");
    }
    // The speaker-grouped figures are there too, and their temperatures are the model's.
    assert_eq!(metrics["cv"]["folds"].as_array().unwrap().len(), 2);
    let info = model_json(&model, "model.json");
    let t = info["temperature"].as_f64().unwrap();
    let speaker_t = metrics["cv"]["calibration"]["temperature"]
        .as_f64()
        .unwrap();
    assert!(
        (t - speaker_t).abs() < 1e-6,
        "the model's temperature is the speaker-grouped one"
    );
    let corpus_t = corpora["calibration"]["temperature"].as_f64().unwrap();
    assert!(
        (t - corpus_t).abs() < 1e-6,
        "held-out corpora are scored with the model's"
    );
    let card = std::fs::read_to_string(model.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("## Held-out corpora"), "{card}");
    assert!(card.contains("UAR within each corpus"), "{card}");
    let within = metrics["cv"]["per_corpus"].as_object().unwrap();
    assert_eq!(
        within.keys().collect::<Vec<_>>(),
        ["manifest:a", "manifest:b"]
    );
    assert_eq!(within["manifest:a"]["n"], 30);
    assert!(card.contains("| manifest:a | 30 | 2 |"), "{card}");
    assert!(model.join("confusion-corpora.png").is_file());

    // eval on one corpus: all 30 files were training data.
    let model_arg = model.display().to_string();
    let eval = |data: &Path| {
        let out = serd(&[
            "eval",
            "--backend",
            "cpu",
            "--model",
            &model_arg,
            "--data",
            data.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (json, text(&out.stderr))
    };
    let (json, stderr) = eval(&a);
    assert_eq!(json["trained_on"]["n"], 30, "{json}");
    assert_eq!(json["trained_on"]["files"].as_array().unwrap().len(), 30);
    assert!(json["trained_on"]["held_out"].is_null(), "{json}");
    assert!(
        stderr.contains("30 of 30 files were in the model's training data"),
        "{stderr}"
    );
    // A file the model never saw (new bytes) is held out; a renamed copy of a training file is not.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let mut rows = String::from("path,label,speaker\n");
    for (n, emotion) in ["anger", "sadness"].iter().enumerate() {
        let name = format!("new_{emotion}.wav");
        std::fs::write(
            fresh.join(&name),
            Wav::pcm16(16_000, 1).encode(&utterance(emotion, 7, 5)),
        )
        .unwrap();
        writeln!(rows, "{name},{emotion},x{n}").unwrap();
    }
    std::fs::copy(dir.path().join("s0_anger_0.wav"), fresh.join("renamed.wav")).unwrap();
    rows.push_str("renamed.wav,anger,x0\n");
    std::fs::write(fresh.join("fresh.csv"), rows).unwrap();
    let (json, stderr) = eval(&fresh.join("fresh.csv"));
    assert_eq!(json["trained_on"]["n"], 1, "{json}");
    assert!(json["trained_on"]["files"][0]
        .as_str()
        .unwrap()
        .ends_with("renamed.wav"));
    assert_eq!(json["trained_on"]["held_out"]["n"], 2, "{json}");
    assert!(stderr.contains("1 of 3 files"), "{stderr}");

    // --cv corpus with one corpus is a command-line mistake.
    let mut args = small_training(&a, &dir.path().join("m2"), &dir.path().join("cache"), &[]);
    args.extend(["--cv".to_string(), "corpus".to_string()]);
    let out = serd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("two corpora"),
        "{}",
        text(&out.stderr)
    );
}

/// Fault injection: `train` killed with SIGKILL at several points (feature extraction into the
/// cache, cross-validation, the final model, the swap) never leaves a corrupt model or cache
/// entry behind; the model folder is the old one or the new one, whole; and a rerun gives the
/// figures of an uninterrupted run.
#[test]
fn train_killed_at_any_point_leaves_nothing_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = corpus(dir.path());
    let args = |out: &Path, cache: &Path| small_training(&manifest, out, cache, &[]);
    let run = |args: &[String]| serd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let reference = run(&args(
        &dir.path().join("ref"),
        &dir.path().join("ref-cache"),
    ));
    assert!(reference.status.success(), "{}", text(&reference.stderr));

    let (out, cache) = (dir.path().join("model"), dir.path().join("cache"));
    // A first complete model, so that later kills have an old model to damage.
    assert!(run(&args(&out, &cache)).status.success());
    std::fs::remove_dir_all(&cache).unwrap();
    let model_files = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let complete = model_files(&out);
    for delay_ms in [150, 400, 900, 1600, 2500, 3500] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_serd"))
            .args(args(&out, &cache))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        // The model folder is whole, and it loads and predicts (checksums verified).
        assert_eq!(model_files(&out), complete, "after a kill at {delay_ms} ms");
        let wav = dir.path().join("s0_anger_0.wav");
        predict(out.to_str().unwrap(), &[wav.to_str().unwrap()]);
    }
    // Whatever the kills left in the cache and beside the model, a rerun gives the figures of
    // the uninterrupted run, and leaves no staging folder behind.
    let rerun = run(&args(&out, &cache));
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    assert_eq!(rerun.stdout, reference.stdout);
    let leftovers: Vec<String> = model_files(dir.path())
        .into_iter()
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The linear model (no blocks), penalised and trained for a fixed number of epochs on the whole
/// training part: it separates the corpus, runs every epoch, keeps the last, holds nothing out,
/// and says so in model.json, metrics.json and the card.
#[test]
fn a_linear_model_trains_for_fixed_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_separable(
        dir.path(),
        &[
            "--blocks",
            "0",
            "--weight-decay",
            "0.01",
            "--no-early-stopping",
            "--learning-rate",
            "0.01",
        ],
    );
    let (info, metrics) = (
        model_json(&model, "model.json"),
        model_json(&model, "metrics.json"),
    );
    assert_eq!(info["model"]["blocks"], 0);
    assert!(metrics["protocol"]["validation"]
        .as_str()
        .unwrap()
        .starts_with("none"));
    let logs: Vec<&serde_json::Value> = metrics["cv"]["folds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["fit"].as_array().unwrap())
        .chain(metrics["final"].as_array().unwrap())
        .collect();
    assert_eq!(logs.len(), 3, "two folds and the final model");
    for log in logs {
        assert_eq!(
            (&log["epochs"], &log["best_epoch"]),
            (&30.into(), &30.into())
        );
        assert!(log["best_valid_loss"].is_null(), "{log}");
        assert!(log["train_loss"].as_f64().unwrap().is_finite(), "{log}");
    }
    // 88 weights and a bias per class: a few kilobytes, not a CNN's.
    let weights = std::fs::metadata(model.join("weights-0.bpk"))
        .unwrap()
        .len();
    assert!(weights < 16_384, "{weights} bytes");
    let card = std::fs::read_to_string(model.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("A linear model"), "{card}");
    assert!(
        card.contains("trains 30 epochs on the whole training part"),
        "{card}"
    );
    let sad = dir.path().join("s3_sadness_1.wav");
    assert_eq!(
        predict(model.to_str().unwrap(), &[sad.to_str().unwrap()])[0]["label"],
        "sadness"
    );
}

/// An ensemble of a network and a linear member: the network stops early, the linear member runs
/// all its epochs on the whole training part; model.json, metrics.json and the card say so, the
/// second weights file is a linear model's, and the model predicts.
#[test]
fn a_linear_member_joins_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_separable(dir.path(), &["--linear", "1"]);
    let (info, metrics) = (
        model_json(&model, "model.json"),
        model_json(&model, "metrics.json"),
    );
    assert_eq!((&info["members"], &info["linear"]), (&1.into(), &1.into()));
    assert_eq!(info["model"]["blocks"], 2, "the network keeps its blocks");
    // The command as a user would type it again, wherever the binary lives.
    let command = metrics["command"].as_str().unwrap();
    assert!(
        command.starts_with("serd train ") && command.contains(" --linear 1"),
        "{command}"
    );
    let linear = &metrics["protocol"]["linear"];
    assert_eq!(linear["members"], 1);
    assert_eq!(linear["fit"]["early_stopping"], false);
    assert_eq!(linear["fit"]["weight_decay"], 0.06);
    let epochs = linear["fit"]["epochs"].as_u64().unwrap();
    for fits in metrics["cv"]["folds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["fit"])
        .chain([&metrics["final"]])
    {
        let [network, linear] = fits.as_array().unwrap().as_slice() else {
            panic!("two fits: {fits}");
        };
        assert!(network["best_valid_loss"].as_f64().is_some(), "{network}");
        assert!(network["epochs"].as_u64().unwrap() <= 30, "{network}");
        assert_eq!(linear["best_epoch"].as_u64(), Some(epochs), "{linear}");
        assert!(linear["best_valid_loss"].is_null(), "{linear}");
    }
    let size = |n: usize| {
        std::fs::metadata(model.join(format!("weights-{n}.bpk")))
            .unwrap()
            .len()
    };
    assert!(
        size(1) < 16_384 && size(0) > 4 * size(1),
        "{} {}",
        size(0),
        size(1)
    );
    let card = std::fs::read_to_string(model.join("MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("An ensemble of 1 network (a CNN of 2 blocks")
            && card.contains("1 linear model"),
        "{card}"
    );
    assert!(
        card.contains("the network stops early")
            && card.contains(&format!(
                "every linear model trains {epochs} epochs on the whole training part, \
                 validation split included ("
            )),
        "{card}"
    );
    let sad = dir.path().join("s3_sadness_1.wav");
    assert_eq!(
        predict(model.to_str().unwrap(), &[sad.to_str().unwrap()])[0]["label"],
        "sadness"
    );
}

/// `serd train` ([`small_training`] with `extra`) on the synthetic corpus, written into `dir`:
/// it must succeed and separate the corpus (UAR above 0.8). Returns the model folder.
fn train_separable(dir: &Path, extra: &[&str]) -> PathBuf {
    let manifest = corpus(dir);
    let (model, cache) = (dir.join("model"), dir.join("cache"));
    let args = small_training(&manifest, &model, &cache, extra);
    let out = serd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["uar"].as_f64().unwrap() > 0.8, "{report}");
    model
}

/// A JSON file of a model folder, parsed.
fn model_json(model: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(model.join(name)).unwrap()).unwrap()
}

/// `serd train` on a small corpus: 2 folds, at most 30 epochs, the CPU backend, and `extra`.
fn small_training(data: &Path, out: &Path, cache: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["train", "--data"].map(String::from).to_vec();
    args.push(data.display().to_string());
    args.extend(["--out".to_string(), out.display().to_string()]);
    args.extend(["--cache".to_string(), cache.display().to_string()]);
    args.extend(
        [
            "--folds",
            "2",
            "--epochs",
            "30",
            "--backend",
            "cpu",
            "--window",
            "whole",
        ]
        .iter()
        .chain(extra)
        .map(|a| a.to_string()),
    );
    args
}

/// `serd::train::run` without the command line: a program's own [`serd::train::TrainConfig`]
/// trains, writes the model folder and returns the figures; a value out of range is refused in
/// words of the value, not of a flag.
#[test]
fn the_library_trains_without_the_command_line() {
    use serd::train::{Field, Silent, TrainConfig, TrainError};
    let dir = tempfile::tempdir().unwrap();
    let manifest = corpus(dir.path());
    let out = dir.path().join("model");
    let mut config = TrainConfig::new(vec![manifest], out.clone());
    config.cache = Some(dir.path().join("cache"));
    config.folds = 2;
    config.fit.epochs = 30;
    config.backend = serd::backend::Backend::Cpu;
    config.windowing = serd::features::Windowing::Whole;
    let report = serd::train::run(&config, &mut Silent).unwrap();
    assert_eq!(
        report.n, 60,
        "the fear file left out, the broken one skipped"
    );
    assert!(report.uar.unwrap() > 0.8, "{:?}", report.uar);
    assert_eq!(report.skipped.len(), 1);
    let metrics = model_json(&out, "metrics.json");
    assert_eq!(metrics["protocol"]["folds"], 2);
    assert_eq!(metrics["command"], "serd::train::run");
    assert!(out.join("model.json").exists() && out.join("MODEL_CARD.md").exists());
    // The model it wrote serves predict.
    let audio = dir.path().join("s0_anger_0.wav");
    let lines = predict(out.to_str().unwrap(), &[audio.to_str().unwrap()]);
    assert_eq!(lines.len(), 1);

    config.folds = 1;
    match serd::train::run(&config, &mut Silent) {
        Err(TrainError::Config(e)) => {
            assert_eq!(e.field, Field::Folds);
            assert_eq!(e.to_string(), "folds must be at least 2, not 1");
        }
        other => panic!("{other:?}"),
    }
}
