//! The `serd` binary: output formats, bad input, exit codes.

use crate::common::{fixture, json_lines, serd, serd_full, text, Wav};

#[test]
fn extract_prints_one_json_object_per_window() {
    let speech = fixture("speech_16k.wav");
    let out = serd(&[
        "extract",
        "--window",
        "1",
        "--hop",
        "0.5",
        speech.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 11);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["file"], speech.to_str().unwrap());
        assert_eq!(line["t_start"].as_f64().unwrap(), i as f64 * 0.5);
        assert_eq!(line["features"].as_object().unwrap().len(), 88);
        assert!(line["features"]["loudness_sma3_amean"].as_f64().unwrap() > 0.0);
    }
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
}

#[test]
fn extract_csv_has_header_and_rows_in_input_order() {
    let files = [
        fixture("tone_16k.wav"),
        fixture("speech_16k.wav"),
        fixture("noise_16k.wav"),
    ];
    let mut args = vec!["extract", "--format", "csv", "--jobs", "2"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = serd(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0][..5],
        [
            "file",
            "t_start",
            "t_end",
            "voiced",
            "F0semitoneFrom27.5Hz_sma3nz_amean"
        ]
    );
    assert_eq!(rows.len(), 4);
    for (row, file) in rows[1..].iter().zip(&files) {
        assert_eq!(row[0], file.to_str().unwrap());
        assert_eq!(row.len(), 4 + 88);
    }
}

#[test]
fn bad_files_are_reported_one_line_each_and_the_rest_extracted() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let good = Wav::pcm16(16_000, 1).encode(&crate::common::tone(16_000, 1.0));
    std::fs::write(p("empty.wav"), b"").unwrap();
    std::fs::write(p("truncated.wav"), &good[..20]).unwrap();
    std::fs::write(
        p("text.wav"),
        b"this is not audio at all, just some words in a file\n".repeat(20),
    )
    .unwrap();
    std::fs::write(p("zero_length.wav"), Wav::pcm16(16_000, 1).encode(&[])).unwrap();
    let mut absurd_rate = good.clone();
    absurd_rate[24..28].copy_from_slice(&4_000_000_000u32.to_le_bytes());
    std::fs::write(p("absurd_rate.wav"), absurd_rate).unwrap();
    // symphonia asserts on a zero sample rate (a panic inside the decoder, contained by serd).
    let mut zero_rate = good.clone();
    zero_rate[24..28].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(p("zero_rate.wav"), zero_rate).unwrap();
    let mut zero_channels = good.clone();
    zero_channels[22..24].copy_from_slice(&0u16.to_le_bytes());
    std::fs::write(p("zero_channels.wav"), zero_channels).unwrap();
    std::fs::create_dir(p("a_directory.wav")).unwrap();
    std::fs::write(p("good.wav"), &good).unwrap();

    let bad = [
        "empty.wav",
        "truncated.wav",
        "text.wav",
        "zero_length.wav",
        "absurd_rate.wav",
        "zero_rate.wav",
        "zero_channels.wav",
        "a_directory.wav",
        "missing.wav",
    ];
    let mut args: Vec<String> = vec!["extract".into()];
    args.extend(bad.iter().map(|b| p(b).display().to_string()));
    args.push(p("good.wav").display().to_string());
    let out = serd(&args.iter().map(String::as_str).collect::<Vec<_>>());

    assert_eq!(out.status.code(), Some(1), "non-zero exit when files fail");
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the good file is extracted: {stdout}"
    );
    assert!(stdout.contains("good.wav"));
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{stderr}"
    );
    // A full stderr loses the messages, nothing else: the same output, the same status.
    let quiet = serd_full(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        false,
        true,
    );
    assert_eq!(quiet.status.code(), Some(1));
    assert_eq!(quiet.stdout, out.stdout);
    for name in bad {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(&*p(name).display().to_string()))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}: exactly one line naming it in {stderr}"
        );
        assert!(
            lines[0].len() > p(name).display().to_string().len() + 12,
            "{name}: says what is wrong: {}",
            lines[0]
        );
    }
}

#[test]
fn usage_errors_exit_2_and_broken_pipe_exits_0() {
    let out = serd(&[
        "extract",
        "--window",
        "0.01",
        fixture("tone_16k.wav").to_str().unwrap(),
    ]);
    // Values clap cannot check are refused after parsing, with the same status as its own.
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("window must be between"),
        "{}",
        text(&out.stderr)
    );
    // Off openSMILE's 10 ms grid: refused, not silently moved.
    let tone = fixture("tone_16k.wav");
    let out = serd(&[
        "extract",
        "--window",
        "1",
        "--hop",
        "0.015",
        tone.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("10 ms"), "{}", text(&out.stderr));
    assert_eq!(serd(&["extract"]).status.code(), Some(2));
    assert_eq!(serd(&["frobnicate"]).status.code(), Some(2));
    let tone = fixture("tone_16k.wav");
    for jobs in ["0", "100000"] {
        let out = serd(&["extract", "--jobs", jobs, tone.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "--jobs {jobs}");
    }

    // A reader that closes stdout at once: serd stops quietly with status 0.
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_serd"))
        .args([
            "extract",
            "--window",
            "0.5",
            "--hop",
            "0.1",
            fixture("speech_16k.wav").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn help_lists_every_command() {
    let out = serd(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in ["listen", "devices", "extract", "train", "eval", "predict"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "{command}: {help}"
        );
        // Each command's help lists its own options apart from the global ones.
        let out = serd(&[command, "--help"]);
        assert!(out.status.success(), "{command}");
        let help = text(&out.stdout);
        let global = help
            .find("Global options:")
            .unwrap_or_else(|| panic!("{command}: {help}"));
        let own = &help[..global];
        for flag in ["--verbose", "--quiet", "--strict"] {
            assert!(
                !own.contains(flag),
                "{command}: {flag} among its own options"
            );
            assert!(help[global..].contains(flag), "{command}: {help}");
        }
    }
}

/// A binary copied anywhere, with an empty cache, unpacks its embedded openSMILE and works; a
/// library override that cannot be loaded is one clear line and status 1.
#[test]
fn a_moved_binary_finds_opensmile_and_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let moved = dir.path().join("bin/serd");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_serd"), &moved).unwrap();
    let cache = dir.path().join("cache");
    let tone = fixture("tone_16k.wav");
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(&moved);
        cmd.args(["extract", tone.to_str().unwrap()])
            .env("SERD_CACHE_DIR", &cache)
            .env_remove("SERD_OPENSMILE_LIB");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };

    let out = run(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let unpacked: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(unpacked.len(), 1, "one bundle folder: {unpacked:?}");
    assert!(unpacked[0].join(".complete").is_file());
    assert!(unpacked[0]
        .join("config/egemaps/v02/eGeMAPSv02.conf")
        .is_file());

    // A run killed while unpacking leaves its staging folder; the next run removes it.
    let name = unpacked[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    std::fs::remove_dir_all(&unpacked[0]).unwrap();
    let abandoned = cache.join(format!(".{name}.partial-4000000000")); // no such pid
    std::fs::create_dir_all(abandoned.join("config")).unwrap();
    std::fs::write(abandoned.join("libSMILEapi.so"), b"half").unwrap();
    let out = run(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let left: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from(&name)]);

    // The binary carries its model too: moved to an empty folder, under another $HOME, with no
    // source tree in sight, `listen` works with the bundled model, and --version names it.
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let speech = fixture("speech_16k.wav");
    let listened = std::process::Command::new(&moved)
        .args([
            "listen",
            "--backend",
            "cpu",
            "--input",
            speech.to_str().unwrap(),
        ])
        .current_dir(moved.parent().unwrap())
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(listened.status.success(), "{}", text(&listened.stderr));
    let events = json_lines(&listened.stdout);
    let model = events[0]["model"].as_str().unwrap();
    assert!(model.starts_with(home.to_str().unwrap()), "{model}");
    assert!(events.iter().any(|e| e["type"] == "emotion"), "{events:?}");
    let bundled: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default/model.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(events[0]["features"], bundled["features"]);
    let version = std::process::Command::new(&moved)
        .arg("--version")
        .output()
        .unwrap();
    let version = text(&version.stdout);
    // "1 network and 1 linear model", "2 networks": counted, in the singular for one.
    let count = |key: &str, what: &str| {
        let n = bundled[key].as_u64().unwrap_or(0) as usize;
        serd::logging::count(n, what, &format!("{what}s"))
    };
    let members = match bundled["linear"].as_u64().unwrap_or(0) {
        0 => count("members", "network"),
        _ => format!(
            "{} and {}",
            count("members", "network"),
            count("linear", "linear model")
        ),
    };
    assert!(
        version.contains("bundled model")
            && version.contains(bundled["features"].as_str().unwrap())
            && version.contains(&format!("windows, {members})")),
        "{version}"
    );

    let out = run(&[("SERD_OPENSMILE_LIB", "/nonexistent/libSMILEapi.so")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/nonexistent/libSMILEapi.so") && stderr.contains("SERD_OPENSMILE_LIB"),
        "{stderr}"
    );
}

#[test]
fn a_file_shorter_than_the_window_is_a_warning_not_silence() {
    let tone = fixture("tone_16k.wav");
    let out = serd(&["extract", "--window", "5", tone.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("tone_16k.wav") && stderr.contains("gives no complete window"),
        "{stderr}"
    );
}

/// A file name holding a line break is written escaped: one message stays one line.
#[test]
fn a_line_break_in_a_file_name_keeps_the_error_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two\nlines.wav");
    std::fs::write(&path, b"not audio").unwrap();
    let out = serd(&["extract", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 2, "{stderr}"); // the file's error and the summary
    assert!(
        stderr.lines().next().unwrap().contains("two\\nlines.wav"),
        "{stderr}"
    );
}

/// Samples that are not numbers are silence for `extract` too (not full scale): the features of
/// a float WAV holding NaN and infinities are those of the same file with zeros there.
#[test]
fn non_finite_samples_are_extracted_as_silence() {
    let dir = tempfile::tempdir().unwrap();
    let mut odd = crate::common::tone(16_000, 2.0);
    let mut zeroed = odd.clone();
    for i in (1000..odd.len()).step_by(997) {
        odd[i] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i % 3];
        zeroed[i] = 0.0;
    }
    let float = Wav {
        bits: 32,
        float: true,
        ..Wav::pcm16(16_000, 1)
    };
    let (a, b) = (dir.path().join("odd.wav"), dir.path().join("zeroed.wav"));
    std::fs::write(&a, float.encode(&odd)).unwrap();
    std::fs::write(&b, float.encode(&zeroed)).unwrap();
    let features = |path: &std::path::Path| {
        let out = serd(&["extract", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (
            json_lines(&out.stdout)[0]["features"].clone(),
            text(&out.stderr),
        )
    };
    let ((odd, warning), (zeroed, _)) = (features(&a), features(&b));
    assert_eq!(odd, zeroed);
    assert!(
        warning.contains("odd.wav") && warning.contains("not numbers"),
        "{warning}"
    );
}

/// The shortest audio serd judges is openSMILE's longest analysis frame, 60 ms: a file of 959
/// samples at 16 kHz is an error that says so, one of 960 gets a prediction.
#[test]
fn the_shortest_file_is_60_ms_and_shorter_ones_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let tone = crate::common::tone(16_000, 0.1);
    let write = |n: usize| {
        let path = dir.path().join(format!("{n}.wav"));
        std::fs::write(&path, Wav::pcm16(16_000, 1).encode(&tone[..n])).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (short, enough) = (write(959), write(960));
    let out = serd(&["predict", "--backend", "cpu", &short, &enough]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&short) && stderr.contains("at least 0.06 s"),
        "{stderr}"
    );
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["file"], enough.as_str());
}

/// A recording shorter than one model window is judged by the functionals of all of it, read
/// once: from stdin it gets the prediction it gets as a file, and a damaged one gets one warning,
/// not one per pass. Stdin can be named only once.
#[test]
fn a_short_recording_is_read_once() {
    use crate::common::serd_stdin;
    let dir = tempfile::tempdir().unwrap();
    let speech = std::fs::read(fixture("speech_16k.wav")).unwrap();
    let samples = crate::common::pcm16_samples(&speech);
    let wav = Wav::pcm16(16_000, 1).encode(&samples[..24_000]); // 1.5 s: less than a 2 s window
    let path = dir.path().join("short.wav");
    std::fs::write(&path, &wav).unwrap();
    let predict = ["predict", "--backend", "cpu"];
    let as_file = serd(&[&predict[..], &[path.to_str().unwrap()]].concat());
    assert!(as_file.status.success(), "{}", text(&as_file.stderr));
    let as_stream = serd_stdin(&[&predict[..], &["-"]].concat(), wav.clone());
    assert!(as_stream.status.success(), "{}", text(&as_stream.stderr));
    let (file, stream) = (json_lines(&as_file.stdout), json_lines(&as_stream.stdout));
    assert_eq!((file.len(), stream.len()), (1, 1));
    assert_eq!(file[0]["probs"], stream[0]["probs"]);
    assert_eq!(stream[0]["file"], "-");

    // Cut inside its data, the header still announcing all of it: one warning naming the file.
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &wav[..wav.len() / 2]).unwrap();
    let out = serd(&[&predict[..], &[cut.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cut.wav"), "{stderr}");

    for command in ["predict", "extract"] {
        let out = serd_stdin(&[command, "-", "-"], wav.clone());
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(text(&out.stderr).contains("only once"), "{command}");
        assert!(out.stdout.is_empty(), "{command}");
    }
}

/// `-` reads a stream from stdin as it arrives: a WAV (also one whose sizes are a pipe's
/// placeholders), an Ogg stream, or raw PCM described by --raw/--rate/--channels. The features
/// are those of the same audio read from a file.
#[test]
fn stdin_streams_give_the_features_of_the_file() {
    use crate::common::{pcm16_samples, serd_stdin};
    let features = |out: std::process::Output| {
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "");
        json_lines(&out.stdout)
            .into_iter()
            .map(|l| l["features"].clone())
            .collect::<Vec<_>>()
    };
    for name in ["speech_48k.wav", "tone_16k.flac"] {
        let file = fixture(name);
        let expected = features(serd(&["extract", file.to_str().unwrap()]));
        assert!(!expected.is_empty());
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(
            features(serd_stdin(&["extract", "-"], bytes)),
            expected,
            "{name}"
        );
    }
    // Ogg Vorbis: the encoder's padding at the end can only be trimmed knowing where the stream
    // ends, so a piped stream is up to a packet longer than the file.
    let ogg = fixture("speech_16k.ogg");
    let length = |out: std::process::Output| json_lines(&out.stdout)[0]["t_end"].as_f64().unwrap();
    let (file_s, stream_s) = (
        length(serd(&["extract", ogg.to_str().unwrap()])),
        length(serd_stdin(&["extract", "-"], std::fs::read(&ogg).unwrap())),
    );
    assert!(
        (0.0..0.05).contains(&(stream_s - file_s)),
        "{file_s} {stream_s}"
    );
    let wav = std::fs::read(fixture("speech_48k.wav")).unwrap();
    let expected = features(serd(&[
        "extract",
        fixture("speech_48k.wav").to_str().unwrap(),
    ]));
    // What a writer that cannot seek back leaves in the header: sizes of 0.
    let mut placeholders = wav.clone();
    let data = wav.windows(4).position(|w| w == b"data").unwrap();
    placeholders[data + 4..data + 8].fill(0);
    placeholders[4..8].fill(0);
    assert_eq!(
        features(serd_stdin(&["extract", "-"], placeholders)),
        expected
    );
    // Raw PCM: the same samples without a header, as 16-bit integers and as stereo floats.
    let samples = pcm16_samples(&wav);
    let s16: Vec<u8> = wav[data + 8..].to_vec();
    let raw = ["extract", "-", "--raw", "s16le", "--rate", "48000"];
    assert_eq!(features(serd_stdin(&raw, s16)), expected);
    let f32_stereo: Vec<u8> = samples
        .iter()
        .flat_map(|&x| [x as f32, x as f32])
        .flat_map(f32::to_le_bytes)
        .collect();
    let raw = [
        "extract",
        "-",
        "--raw",
        "f32le",
        "--rate",
        "48000",
        "--channels",
        "2",
    ];
    assert_eq!(features(serd_stdin(&raw, f32_stereo)), expected);
    // Raw PCM needs its rate; nothing on stdin is one clear error.
    let out = serd(&["extract", "-", "--raw", "s16le"]);
    assert_eq!(out.status.code(), Some(2));
    // --raw describes stdin: with only files to read it is a mistake, not ignored.
    let speech = fixture("speech_48k.wav");
    let out = serd(&[&raw[..1], &[speech.to_str().unwrap()], &raw[2..]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--raw"), "{}", text(&out.stderr));
    let out = serd_stdin(&["extract", "-"], Vec::new());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("-: empty"),
        "{}",
        text(&out.stderr)
    );
}

/// Whole-file functionals hold every frame until the end: past 30 minutes serd refuses politely
/// (early, before memory grows) and says to use windows.
#[test]
fn whole_file_functionals_of_more_than_30_minutes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.wav");
    let mut wav = Wav::pcm16(16_000, 1).encode(&[]);
    let data = 31 * 60 * 16_000 * 2u32;
    wav[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    wav[40..44].copy_from_slice(&data.to_le_bytes());
    wav.resize(wav.len() + data as usize, 0);
    std::fs::write(&path, wav).unwrap();
    let out = serd(&["extract", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("long.wav") && stderr.contains("longer than 30 min"),
        "{stderr}"
    );
}

/// Raw PCM on stdin without `--raw` is not taken for audio it is not; the error names the options
/// that would read it.
#[test]
fn raw_pcm_on_stdin_without_raw_says_how_to_read_it() {
    use crate::common::serd_stdin;
    let wav = std::fs::read(fixture("speech_16k.wav")).unwrap();
    let raw = wav[44..].to_vec();
    for args in [
        &["listen", "--backend", "cpu", "--input", "-"][..],
        &["predict", "--backend", "cpu", "-"][..],
    ] {
        let out = serd_stdin(args, raw.clone());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("--raw") && stderr.contains("--rate"),
            "{stderr}"
        );
    }
    // Named as a file, the same bytes get no such hint: a file's header says what it holds.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.pcm");
    std::fs::write(&path, &raw).unwrap();
    let out = serd(&["predict", "--backend", "cpu", path.to_str().unwrap()]);
    assert!(
        !text(&out.stderr).contains("--raw"),
        "{}",
        text(&out.stderr)
    );
}

/// A manifest's labels outside the five classes are left out, and the message lists the classes:
/// a warning when other rows remain, the error when none does.
#[test]
fn unknown_manifest_labels_are_reported_with_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let speech = fixture("speech_16k.wav");
    let classes = "anger, surprise, happiness, sadness, neutral";
    let only = dir.path().join("only.csv");
    std::fs::write(&only, format!("path,label\n{},angry\n", speech.display())).unwrap();
    let out = serd(&["eval", "--backend", "cpu", "--data", only.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("angry 1") && stderr.contains(classes),
        "{stderr}"
    );

    let some = dir.path().join("some.csv");
    std::fs::write(
        &some,
        format!(
            "path,label\n{},angry\n{},anger\n",
            speech.display(),
            fixture("speech_48k.wav").display()
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let out = serd(&[
        "eval",
        "--backend",
        "cpu",
        "--data",
        some.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("angry 1") && stderr.contains(classes),
        "{stderr}"
    );
    assert_eq!(json_lines(&out.stdout)[0]["left_out"]["angry"], 1);
}
