//! Decoding: every common WAV layout, AIFF (also misnamed), FLAC, MP3, Ogg Vorbis; downmixing.

use serd::audio::decode::{AudioFile, DecodeOptions};

use crate::common::{fixture, tone, Wav};

fn decode_all(path: &std::path::Path) -> (AudioFile, Vec<f32>) {
    let mut file = AudioFile::open(path, DecodeOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut samples = Vec::new();
    while file.read(&mut samples).unwrap() {}
    (file, samples)
}

#[test]
fn wav_layouts_decode_to_the_same_mono_signal() {
    let dir = tempfile::tempdir().unwrap();
    let mono = tone(16_000, 0.5);
    // Stereo: the tone on the left, at half level on the right: the mono mix is 0.75 x tone.
    let stereo: Vec<f64> = mono.iter().flat_map(|&x| [x, 0.5 * x]).collect();
    let expected_stereo: Vec<f64> = mono.iter().map(|&x| 0.75 * x).collect();
    let layouts = [
        (
            "pcm8",
            Wav {
                bits: 8,
                ..Wav::pcm16(16_000, 1)
            },
            1.0 / 64.0,
        ),
        ("pcm16", Wav::pcm16(16_000, 1), 1e-4),
        (
            "pcm24",
            Wav {
                bits: 24,
                ..Wav::pcm16(16_000, 1)
            },
            1e-6,
        ),
        (
            "pcm32",
            Wav {
                bits: 32,
                ..Wav::pcm16(16_000, 1)
            },
            1e-6,
        ),
        (
            "float32",
            Wav {
                bits: 32,
                float: true,
                ..Wav::pcm16(16_000, 1)
            },
            1e-7,
        ),
        (
            "float64",
            Wav {
                bits: 64,
                float: true,
                ..Wav::pcm16(16_000, 1)
            },
            1e-7,
        ),
        (
            "extensible24",
            Wav {
                bits: 24,
                extensible: true,
                ..Wav::pcm16(16_000, 1)
            },
            1e-6,
        ),
        (
            "extensible_float",
            Wav {
                bits: 32,
                float: true,
                extensible: true,
                ..Wav::pcm16(16_000, 1)
            },
            1e-7,
        ),
        (
            "extra_chunk",
            Wav {
                extra_chunk: true,
                ..Wav::pcm16(16_000, 1)
            },
            1e-4,
        ),
    ];
    for (name, wav, tolerance) in layouts {
        check_layout(dir.path(), name, &wav, &mono, &mono, tolerance);
    }
    let stereo_layouts = [
        ("stereo16", Wav::pcm16(48_000, 2)),
        (
            "stereo_ext",
            Wav {
                extensible: true,
                ..Wav::pcm16(44_100, 2)
            },
        ),
    ];
    for (name, wav) in stereo_layouts {
        check_layout(dir.path(), name, &wav, &stereo, &expected_stereo, 1e-4);
    }
}

/// Writes `input` in the `wav` layout, decodes it, and compares with the mono `expected`.
fn check_layout(
    dir: &std::path::Path,
    name: &str,
    wav: &Wav,
    input: &[f64],
    expected: &[f64],
    tolerance: f64,
) {
    let path = dir.join(format!("{name}.wav"));
    std::fs::write(&path, wav.encode(input)).unwrap();
    let (file, samples) = decode_all(&path);
    assert_eq!(
        (file.rate(), file.channels(), samples.len()),
        (wav.rate, usize::from(wav.channels), expected.len()),
        "{name}"
    );
    let worst = samples
        .iter()
        .zip(expected)
        .map(|(&a, &b)| (f64::from(a) - b).abs())
        .fold(0.0, f64::max);
    assert!(worst <= tolerance, "{name}: worst sample error {worst}");
}

/// The sox-made containers of tests/fixtures/tone_16k.wav decode to (nearly) the same samples.
#[test]
fn compressed_and_aiff_fixtures_decode_like_the_wav() {
    let (_, reference) = decode_all(&fixture("tone_16k.wav"));
    let rms =
        |v: &[f32]| (v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    for (name, exact) in [
        ("tone_16k.aiff", true),
        ("tone_aiff_named.wav", true),
        ("tone_16k.flac", true),
        ("tone_16k.ogg", false),
        ("tone_16k.mp3", false),
    ] {
        let (file, samples) = decode_all(&fixture(name));
        assert_eq!(file.rate(), 16_000, "{name}");
        if exact {
            assert_eq!(samples, reference, "{name}");
        } else {
            // Lossy codecs add delay/padding; the signal's level survives.
            let (a, b) = (rms(&samples), rms(&reference));
            assert!(
                samples.len() >= reference.len() - 2_000,
                "{name}: {} samples",
                samples.len()
            );
            assert!((a / b - 1.0).abs() < 0.1, "{name}: rms {a} vs {b}");
        }
    }
    // Vorbis's encoder delay and end padding are trimmed (gapless decoding): the Ogg copy of
    // the speech fixture is exactly as long as the WAV (without trimming: 156 samples longer).
    let (_, wav) = decode_all(&fixture("speech_16k.wav"));
    let (_, ogg) = decode_all(&fixture("speech_16k.ogg"));
    assert_eq!(ogg.len(), wav.len());
}

/// Damaged files are used as far as they decode, with one warning naming the file and how much
/// was decoded; `--strict` makes each an error. A WAV left by a recorder that crashed (its
/// header's sizes say more than the file holds, or 0) is read like sox and libsndfile read it.
#[test]
fn damaged_and_truncated_files_warn_or_fail_with_strict() {
    use crate::common::{json_lines, serd, text};
    let dir = tempfile::tempdir().unwrap();
    let wav = std::fs::read(fixture("speech_16k.wav")).unwrap();
    let data = wav.windows(4).position(|w| w == b"data").unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let mut unclosed = wav.clone(); // data and RIFF sizes still the placeholders
    unclosed[data + 4..data + 8].copy_from_slice(&0u32.to_le_bytes());
    unclosed[4..8].copy_from_slice(&0u32.to_le_bytes());
    let mut oversized = wav.clone();
    oversized[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let flac = std::fs::read(fixture("tone_16k.flac")).unwrap();
    let mut flipped = flac.clone();
    for i in (flac.len() / 3..flac.len() / 3 + 40).step_by(7) {
        flipped[i] ^= 0x55;
    }
    // The cut copy holds half the audio: the warning says how much of how much, in seconds.
    let (file, samples) = decode_all(&fixture("speech_16k.wav"));
    let rate = f64::from(file.rate());
    let whole = samples.len() as f64 / rate;
    let held = (wav.len() / 2 - data - 8) as f64 / (2.0 * file.channels() as f64 * rate);
    let cut = format!("announces {whole:.2} s of audio, the file holds {held:.2} s (truncated");
    let cases = [
        (write("unclosed.wav", &unclosed), "sizes are placeholders"),
        (write("oversized.wav", &oversized), "sizes are placeholders"),
        (write("cut.wav", &wav[..wav.len() / 2]), cut.as_str()),
        (write("cut.flac", &flac[..flac.len() / 2]), "s decoded"),
        (write("flipped.flac", &flipped), "s decoded"),
    ];
    let intact = serd(&["extract", fixture("speech_16k.wav").to_str().unwrap()]);
    for (path, needle) in &cases {
        let out = serd(&["extract", path]);
        assert!(out.status.success(), "{path}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{path}: {stderr}");
        assert!(
            stderr.contains(path.as_str()) && stderr.contains(needle),
            "{stderr}"
        );
        assert_eq!(json_lines(&out.stdout).len(), 1, "{path}: used");
        if path.contains("unclosed") || path.contains("oversized") {
            // All of the audio is there: the same features as the intact file.
            assert_eq!(
                json_lines(&out.stdout)[0]["features"],
                json_lines(&intact.stdout)[0]["features"]
            );
        }
        let strict = serd(&["extract", "--strict", path]);
        assert_eq!(strict.status.code(), Some(1), "{path}");
        assert!(strict.stdout.is_empty());
        assert!(text(&strict.stderr).contains("--strict"), "{path}");
    }
    // Intact files never warn.
    assert_eq!(text(&intact.stderr), "");
}
