//! Robustness of the bundled model's front end (level normalisation and noise floor) and of
//! `serd eval --condition`, on synthesised speech (espeak-ng fixtures), never corpus audio:
//! - the last bit of a recording (±1 LSB of TPDF dither) and its digital level (−20 dB) change no
//!   probability by more than 0.1, nor the label of any window that is not a near-tie;
//! - a copy rendered at 48 kHz and brought back by serd's resampler gives probabilities within a
//!   stated tolerance of the 16 kHz original;
//! - `serd eval --condition` reports one entry per condition and a table.

use std::path::{Path, PathBuf};

use serd::audio::decode::DecodeOptions;
use serd::conditions::Condition;
use serd::extract::decode_all;
use serd::rng::Rng;

use crate::common::{fixture, json_lines, serd, text, Wav};

/// Largest difference of any class probability between the 16 kHz original and its copy
/// rendered at 48 kHz (serd's resampler both ways): the resampler's filters change what lies
/// above 7 kHz and a fraction of a sample of timing, which moves the functionals a little: 0.0047
/// on this fixture with the bundled model (2026-12-01; 0.0067 with the previous one).
const RESAMPLED_TOLERANCE: f64 = 0.05;

/// Largest difference of any class probability between a recording and its dithered or −20 dB
/// copy. The front end makes them nearly the same signal for openSMILE, but not bit for bit (the
/// dither survives under the noise floor, the tracker's first frames at an onset can differ,
/// 16-bit rounding), and the networks turn that into a few hundredths: at most 0.049 (dither)
/// and 0.013 (−20 dB) per window on these fixtures with the bundled model (2026-12-01; 0.07 with
/// an earlier model). The label must be the same on every window whose two best
/// classes are more than this apart; a window that is a tie between two classes may go either
/// way (with that earlier model, the 48 kHz fixture opened with one: anger 0.466, happiness
/// 0.465).
const INVARIANT_TOLERANCE: f64 = 0.1;

/// The gap between the two largest probabilities.
fn margin(probs: &[f64]) -> f64 {
    let mut sorted = probs.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    sorted[0] - sorted[1]
}

/// `serd predict --windows` with the bundled model on the CPU: (t_start, label, probs) per
/// classified window.
fn windows(path: &Path) -> Vec<(f64, String, Vec<f64>)> {
    let out = serd(&[
        "predict",
        "--windows",
        "--backend",
        "cpu",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    json_lines(&out.stdout)
        .iter()
        .map(|w| {
            let probs = ["anger", "surprise", "happiness", "sadness", "neutral"]
                .iter()
                .map(|c| w["probs"][c].as_f64().unwrap())
                .collect();
            (
                w["t_start"].as_f64().unwrap(),
                w["label"].as_str().unwrap().to_string(),
                probs,
            )
        })
        .collect()
}

/// Writes `samples` as a 16-bit WAV (rounded, as a recorder would store them).
fn write16(dir: &Path, name: &str, rate: u32, samples: &[f64]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, Wav::pcm16(rate, 1).encode(samples)).unwrap();
    path
}

fn speech(name: &str) -> (Vec<f64>, u32) {
    let audio = decode_all(&fixture(name), DecodeOptions::default()).unwrap();
    (
        audio.samples.iter().map(|&x| f64::from(x)).collect(),
        audio.rate,
    )
}

#[test]
fn dither_and_level_do_not_change_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["speech_16k.wav", "speech_48k.wav"] {
        let (samples, rate) = speech(name);
        let original = write16(dir.path(), "original.wav", rate, &samples);
        // TPDF dither of ±1 LSB: the sum of two uniform variables of ±0.5 LSB each.
        let mut rng = Rng::new(7);
        let lsb = 1.0 / 32768.0;
        let dithered: Vec<f64> = samples
            .iter()
            .map(|x| x + lsb * (rng.uniform() - rng.uniform()))
            .collect();
        let dithered = write16(dir.path(), "dithered.wav", rate, &dithered);
        let quiet: Vec<f64> = samples.iter().map(|x| x * 0.1).collect();
        let quiet = write16(dir.path(), "quiet.wav", rate, &quiet);

        let reference = windows(&original);
        assert!(reference.len() >= 3, "{name}: {} windows", reference.len());
        for (what, copy) in [("dithered", &dithered), ("at -20 dB", &quiet)] {
            let got = windows(copy);
            let times = |w: &[(f64, String, Vec<f64>)]| w.iter().map(|x| x.0).collect::<Vec<_>>();
            assert_eq!(times(&got), times(&reference), "{name} {what}: windows");
            let mut largest = 0.0f64;
            for (g, r) in got.iter().zip(&reference) {
                let worst =
                    g.2.iter()
                        .zip(&r.2)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f64, f64::max);
                largest = largest.max(worst);
                assert!(
                    worst <= INVARIANT_TOLERANCE,
                    "{name} {what}, window at {} s: probabilities differ by {worst}",
                    r.0
                );
                if margin(&r.2) > INVARIANT_TOLERANCE {
                    assert_eq!(g.1, r.1, "{name} {what}, window at {} s: label", r.0);
                }
            }
            eprintln!("{name} {what}: largest probability difference {largest:.4}");
        }
    }
}

#[test]
fn a_copy_rendered_at_48k_gives_close_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let audio = decode_all(&fixture("speech_16k.wav"), DecodeOptions::default()).unwrap();
    let rendered = "rate:48000"
        .parse::<Condition>()
        .unwrap()
        .apply(audio, 1, &[])
        .unwrap();
    assert_eq!(rendered.rate, 48_000);
    let samples: Vec<f64> = rendered.samples.iter().map(|&x| f64::from(x)).collect();
    let copy = write16(dir.path(), "copy_48k.wav", 48_000, &samples);
    let reference = windows(&fixture("speech_16k.wav"));
    let got = windows(&copy);
    assert_eq!(got.len(), reference.len());
    let worst = got
        .iter()
        .zip(&reference)
        .flat_map(|(a, b)| a.2.iter().zip(&b.2).map(|(x, y)| (x - y).abs()))
        .fold(0.0f64, f64::max);
    eprintln!("largest probability difference after 16 -> 48 -> 16 kHz: {worst:.4}");
    assert!(
        worst <= RESAMPLED_TOLERANCE,
        "largest probability difference {worst}"
    );
}

#[test]
fn eval_reports_each_condition() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("data.csv");
    let mut rows = String::from("path,label,speaker\n");
    for (i, name) in ["speech_16k.wav", "speech_44k.wav", "speech_48k.wav"]
        .iter()
        .enumerate()
    {
        rows += &format!("{},neutral,s{i}\n", fixture(name).display());
    }
    // A label outside the five classes: left out, and counted in the report.
    rows += &format!("{},calm,s0\n", fixture("speech_16k.wav").display());
    std::fs::write(&manifest, rows).unwrap();
    let cache = dir.path().join("cache");
    let out = serd(&[
        "eval",
        "--backend",
        "cpu",
        "--data",
        manifest.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--condition",
        "white:10",
        "--condition",
        "babble:10+reverb:0.6",
        "--condition",
        "telephone:alaw",
        "--condition",
        "white:10",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = &json_lines(&out.stdout)[0];
    assert_eq!(report["n"], 3);
    assert_eq!(report["left_out"], serde_json::json!({"calm": 1}));
    assert!(report["ece"].as_f64().unwrap() >= 0.0);
    let conditions = report["conditions"].as_array().unwrap();
    let names: Vec<&str> = conditions
        .iter()
        .map(|c| c["condition"].as_str().unwrap())
        .collect();
    // Asked twice, measured once; babble from three speakers says it is not four voices.
    assert_eq!(
        names,
        ["white:10", "babble:10+reverb:0.6:0", "telephone:alaw"]
    );
    for c in conditions {
        assert_eq!(c["n"], 3, "{c}");
    }
    let stderr = text(&out.stderr);
    assert!(stderr.contains("talkers repeat"), "{stderr}");
    for line in ["clean", "white:10", "telephone:alaw"] {
        assert!(stderr.contains(line), "table lacks {line}: {stderr}");
    }

    let bad = serd(&[
        "eval",
        "--data",
        manifest.to_str().unwrap(),
        "--condition",
        "hiss:10",
    ]);
    assert_eq!(bad.status.code(), Some(2), "a command-line mistake");
    let stderr = text(&bad.stderr);
    assert!(stderr.contains("hiss"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// Inputs unlike speech: white noise and digital silence have no window voiced enough to be
/// classified (listen reports their windows as silence), so `predict` gives them no emotion
/// (label, confidence and probs null) and says how little is voiced. A synthetic harmonic tone
/// is voiced — openSMILE finds its pitch, as it finds a 1 kHz beep's — so it is classified, but
/// never near certainty: the novelty gate and the calibration keep the bundled model's
/// confidence below 0.9 on it.
#[test]
fn out_of_domain_inputs_are_not_given_an_emotion_or_not_near_certain() {
    for name in ["tone_16k.wav", "noise_16k.wav", "silence_16k.wav"] {
        let out = serd(&[
            "predict",
            "--backend",
            "cpu",
            fixture(name).to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let line = &json_lines(&out.stdout)[0];
        assert_eq!(line["type"], "prediction");
        let voiced = line["voiced"].as_f64().unwrap();
        if name.starts_with("tone") {
            assert!(voiced > 0.9, "{name}: {line}");
            let confidence = line["confidence"].as_f64().unwrap();
            assert!(confidence < 0.9, "{name}: {line}");
        } else {
            assert!(voiced < 0.1, "{name}: {line}");
            assert!(line["label"].is_null(), "{name}: {line}");
            assert!(line["confidence"].is_null(), "{name}: {line}");
            assert!(line["probs"].is_null(), "{name}: {line}");
        }
    }
    // eval gives them no emotion either: it leaves them out of the figures and names them, with
    // their voiced shares.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("data.csv");
    let mut rows = String::from("path,label\n");
    for name in ["speech_16k.wav", "noise_16k.wav", "silence_16k.wav"] {
        rows += &format!("{},neutral\n", fixture(name).display());
    }
    std::fs::write(&manifest, rows).unwrap();
    let data = manifest.to_str().unwrap();
    let out = serd(&["eval", "--backend", "cpu", "--data", data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = &json_lines(&out.stdout)[0];
    assert_eq!(report["n"], 1, "{report}");
    let listed: Vec<&str> = report["not_speech"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(f["voiced"].as_f64().unwrap() < 0.1, "{f}");
            f["path"].as_str().unwrap()
        })
        .collect();
    assert_eq!(listed.len(), 2, "{report}");
    assert!(listed
        .iter()
        .all(|p| p.contains("noise") || p.contains("silence")));
    assert!(text(&out.stderr).contains("2 files have too little voiced speech"));
}
