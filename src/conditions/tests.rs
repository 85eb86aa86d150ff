use realfft::RealFftPlanner;

use super::*;

fn sine(freq: f64, amplitude: f64, rate: u32, seconds: f64) -> Audio {
    let n = (f64::from(rate) * seconds) as usize;
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let samples = (0..n)
        .map(|i| (amplitude * (w * i as f64).sin()) as f32)
        .collect();
    Audio { samples, rate }
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

fn diff(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

fn apply(spec: &str, audio: &Audio, seed: u64) -> Audio {
    spec.parse::<Condition>()
        .unwrap()
        .apply(audio.clone(), seed, &[])
        .unwrap()
}

/// Mean power per Hz between `lo` and `hi`, from Hann-windowed 2048-point spectra.
fn band_density(x: &[f32], rate: u32, lo: f64, hi: f64) -> f64 {
    let n = 2048;
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let (mut buf, mut spec) = (fft.make_input_vec(), fft.make_output_vec());
    let bin_hz = f64::from(rate) / n as f64;
    let (mut sum, mut bins) = (0.0, 0);
    for block in x.chunks_exact(n) {
        for (i, (b, v)) in buf.iter_mut().zip(block).enumerate() {
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos();
            *b = v * w as f32;
        }
        fft.process(&mut buf, &mut spec).unwrap();
        for (k, c) in spec.iter().enumerate() {
            if (lo..hi).contains(&(k as f64 * bin_hz)) {
                sum += f64::from(c.norm_sqr());
                bins += 1;
            }
        }
    }
    sum / bins as f64
}

#[test]
fn text_round_trips() {
    for spec in [
        "clean",
        "gain:-30",
        "white:10",
        "pink:-5.5",
        "brown:60",
        "babble:0",
        "floor:-60",
        "reverb:0.6:0",
        "reverb:3:-20",
        "telephone:mulaw",
        "telephone:alaw",
        "rate:48000",
        "reverb:0.6:5+white:20+gain:-12.5+floor:-70+telephone:alaw+rate:44100",
    ] {
        let c: Condition = spec.parse().unwrap();
        assert_eq!(c.to_string(), spec);
        assert_eq!(c.to_string().parse::<Condition>().unwrap(), c);
    }
    let short: Condition = " reverb:0.6 + telephone ".parse().unwrap();
    assert_eq!(short.to_string(), "reverb:0.6:0+telephone:mulaw");
    assert!("clean".parse::<Condition>().unwrap().steps.is_empty());
    assert!("white:3+babble:5"
        .parse::<Condition>()
        .unwrap()
        .needs_babble());
    assert!(!"white:3".parse::<Condition>().unwrap().needs_babble());
}

#[test]
fn bad_specs_name_the_bad_part() {
    for (spec, token, says) in [
        ("whit:10", "whit:10", "unknown step"),
        ("white", "white", "missing value"),
        ("gain:1:2", "gain:1:2", "too many"),
        ("reverb:0.6+white:99", "white:99", "outside -20..=60"),
        ("gain:loud", "gain:loud", "not a number"),
        ("white:nan", "white:nan", "outside"),
        ("rate:44.1", "rate:44.1", "whole number"),
        ("rate:4000", "rate:4000", "outside"),
        ("reverb:5", "reverb:5", "RT60"),
        ("telephone:gsm", "telephone:gsm", "mulaw, alaw"),
        ("white:10+", "white:10+", "empty step"),
        ("clean+white:10", "clean", "empty chain"),
        // The sign of `+10` is no joiner: the step is named whole, with the fix.
        ("white:+10", "white:+10", "write white:10"),
        (
            "reverb:0.5+babble:+5+rate:48000",
            "babble:+5",
            "write babble:5",
        ),
        // Huge values in exponent form, not 309 digits.
        ("gain:1e308", "gain:1e308", "gain dB 1e308 is outside"),
    ] {
        let err = spec.parse::<Condition>().unwrap_err();
        assert_eq!(err.token, token, "{spec}");
        let message = err.to_string();
        assert!(
            message.contains(token) && message.contains(says),
            "{spec}: {message}"
        );
    }
    let unknown = "foo".parse::<Condition>().unwrap_err().to_string();
    assert!(unknown.contains("telephone[:mulaw|alaw]"), "{unknown}");
}

#[test]
fn white_noise_hits_the_snr_and_follows_the_seed() {
    let speech = sine(440.0, 0.3, 16000, 2.0);
    let noisy = apply("white:10", &speech, 7);
    let noise = diff(&noisy.samples, &speech.samples);
    let snr = db(active_level(&speech.samples, 16000).unwrap() / rms(&noise));
    assert!((snr - 10.0).abs() < 0.5, "{snr}");
    assert_eq!(apply("white:10", &speech, 7), noisy);
    assert_ne!(apply("white:10", &speech, 8), noisy);
    // Silence is noised relative to -50 dBFS.
    let silence = Audio {
        samples: vec![0.0; 16000],
        rate: 16000,
    };
    let level = db(rms(&apply("white:10", &silence, 1).samples));
    assert!((level + 60.0).abs() < 0.1, "{level}");
}

#[test]
fn coloured_noise_tilts_towards_low_frequencies() {
    let mut rng = Rng::new(3);
    let n = 16000 * 8;
    let tilt = |x: Vec<f32>| {
        band_density(&x, 16000, 50.0, 500.0) / band_density(&x, 16000, 4000.0, 8000.0)
    };
    let (w, p, b) = (
        tilt(white(n, &mut rng)),
        tilt(pink(n, &mut rng)),
        tilt(brown(n, &mut rng)),
    );
    assert!((0.7..1.4).contains(&w), "white {w}");
    assert!(p > 10.0, "pink {p}");
    assert!(b > 10.0 * p, "brown {b} vs pink {p}");
    assert!((rms(&pink(1000, &mut rng)) - 1.0).abs() < 1e-4);
}

#[test]
fn room_decays_at_rt60_with_the_asked_drr() {
    for (rate, rt60, drr) in [(16000, 0.5, 5.0), (48000, 1.0, -3.0), (16000, 0.2, 10.0)] {
        let h = room_response(rate, rt60, drr, &mut Rng::new(11));
        let start = (0.0025 * f64::from(rate)).round() as usize;
        let tail: Vec<f64> = h[start..].iter().map(|&v| f64::from(v).powi(2)).collect();
        let tail_energy: f64 = tail.iter().sum();
        let measured_drr = 10.0 * (f64::from(h[0]).powi(2) / tail_energy).log10();
        assert!(
            (measured_drr - drr).abs() < 1.0,
            "DRR {measured_drr} vs {drr}"
        );
        // Schroeder backward integration; T20 (-5 to -25 dB) extrapolated to 60 dB.
        let mut edc = tail.clone();
        for i in (0..edc.len() - 1).rev() {
            edc[i] += edc[i + 1];
        }
        let crossing = |level_db: f64| {
            edc.iter()
                .position(|&e| 10.0 * (e / tail_energy).log10() <= level_db)
                .unwrap()
        };
        let t20 = (crossing(-25.0) - crossing(-5.0)) as f64 / f64::from(rate);
        assert!(
            (3.0 * t20 / rt60 - 1.0).abs() < 0.2,
            "RT60 {} vs {rt60}",
            3.0 * t20
        );
    }
    let a = room_response(16000, 0.5, 0.0, &mut Rng::new(1));
    assert_ne!(a, room_response(16000, 0.5, 0.0, &mut Rng::new(2)));
}

#[test]
fn convolution_matches_the_direct_sum() {
    let mut rng = Rng::new(5);
    let x = white(3000, &mut rng);
    let h = white(700, &mut rng);
    let y = convolve(&x, &h).unwrap();
    assert_eq!(y.len(), x.len());
    for i in [0, 1, 699, 700, 1500, 2999] {
        let direct: f64 = (0..=i.min(699))
            .map(|k| f64::from(h[k]) * f64::from(x[i - k]))
            .sum();
        assert!(
            (f64::from(y[i]) - direct).abs() < 1e-3,
            "{i}: {} vs {direct}",
            y[i]
        );
    }
}

#[test]
fn reverb_keeps_length_and_loudness() {
    let speech = sine(300.0, 0.2, 16000, 1.5);
    let wet = apply("reverb:0.8:0", &speech, 2);
    assert_eq!(wet.samples.len(), speech.samples.len());
    let change =
        db(active_level(&wet.samples, 16000).unwrap()
            / active_level(&speech.samples, 16000).unwrap());
    assert!(change.abs() < 0.01, "{change}");
    assert_ne!(wet, speech);
}

#[test]
fn telephone_band_limits_and_runs_at_8k() {
    for law in ["telephone:mulaw", "telephone:alaw"] {
        let pass = apply(law, &sine(1000.0, 0.5, 16000, 1.0), 0);
        assert_eq!(pass.rate, 8000);
        assert_eq!(pass.samples.len(), 8000);
        let gain = db(rms(&pass.samples[2000..6000]) / (0.5 / 2f64.sqrt()));
        assert!(gain.abs() < 1.0, "{law} 1 kHz: {gain} dB");
        let stop = apply(law, &sine(100.0, 0.5, 16000, 1.0), 0);
        let gain = db(rms(&stop.samples[2000..6000]) / (0.5 / 2f64.sqrt()));
        assert!(gain < -10.0, "{law} 100 Hz: {gain} dB");
    }
}

#[test]
fn companding_error_is_small() {
    // 8-bit µ-law's worst relative error is about ln(256) / 254 ≈ 2.2 % near full scale and
    // ~3 % at 0.01; on average it is well under 2 %.
    for law in [Companding::MuLaw, Companding::ALaw] {
        let (mut worst, mut total, mut count) = (0.0f64, 0.0, 0);
        for i in 0..=990 {
            let x = 0.01 + i as f64 * 0.001;
            for v in [x, -x] {
                let err = ((f64::from(compand(v as f32, law)) - v) / v).abs();
                worst = worst.max(err);
                total += err;
                count += 1;
            }
        }
        assert!(worst < 0.035, "{law:?} worst {worst}");
        assert!(
            total / f64::from(count) < 0.02,
            "{law:?} mean {}",
            total / f64::from(count)
        );
        assert_eq!(compand(0.0, law), 0.0);
        assert!((compand(3.0, law) - 1.0).abs() < 0.03);
    }
}

#[test]
fn gain_and_rate() {
    let speech = sine(440.0, 0.5, 16000, 1.0);
    let quiet = apply("gain:-20", &speech, 0);
    for (q, s) in quiet.samples.iter().zip(&speech.samples) {
        assert!((q - s * 0.1).abs() < 1e-7);
    }
    let up = apply("rate:48000", &speech, 0);
    assert_eq!(
        (up.rate, up.samples.len()),
        (48000, 3 * speech.samples.len())
    );
    assert_eq!(apply("rate:16000", &speech, 0), speech);
    let floor = apply(
        "floor:-60",
        &Audio {
            samples: vec![0.0; 8000],
            rate: 16000,
        },
        0,
    );
    assert!((db(rms(&floor.samples)) + 60.0).abs() < 0.1);
}

#[test]
fn bad_audio_and_empty_audio() {
    let empty = Audio {
        samples: vec![],
        rate: 16000,
    };
    assert_eq!(apply("reverb:0.5+white:0+rate:48000", &empty, 0), empty);
    let c: Condition = "gain:0".parse().unwrap();
    let nan = Audio {
        samples: vec![0.0, f32::NAN],
        rate: 16000,
    };
    assert!(matches!(
        c.apply(nan, 0, &[]),
        Err(Error::NonFinite { index: 1, .. })
    ));
    let wild = Condition {
        steps: vec![Step::Rate { hz: 0 }],
    };
    assert!(matches!(
        wild.apply(sine(1.0, 0.1, 16000, 0.1), 0, &[]),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn babble_needs_talkers_and_hits_the_snr() {
    let speech = sine(200.0, 0.3, 16000, 2.0);
    let c: Condition = "babble:5".parse().unwrap();
    assert!(matches!(
        c.apply(speech.clone(), 0, &[]),
        Err(Error::Babble(_))
    ));
    // Talkers: syllable-like bursts at 22.05 kHz, resampled on the way in.
    let talkers: Vec<Audio> = [150.0, 230.0, 310.0]
        .iter()
        .map(|&f| {
            let mut t = sine(f, 0.4, 22050, 1.3);
            for (i, v) in t.samples.iter_mut().enumerate() {
                *v *= (i as f32 / 22050.0 * 4.0 * std::f32::consts::PI)
                    .sin()
                    .abs();
            }
            t
        })
        .collect();
    let noisy = c.apply(speech.clone(), 9, &talkers).unwrap();
    let babble = diff(&noisy.samples, &speech.samples);
    let snr =
        db(active_level(&speech.samples, 16000).unwrap() / active_level(&babble, 16000).unwrap());
    assert!((snr - 5.0).abs() < 1.0, "{snr}");
    assert_eq!(c.apply(speech.clone(), 9, &talkers).unwrap(), noisy);
    assert_ne!(c.apply(speech, 10, &talkers).unwrap(), noisy);
}

#[test]
fn drawn_conditions_parse_back_and_stay_in_range() {
    let mut rng = Rng::new(42);
    for (babble, voice) in [(false, 0.0), (true, 0.0), (true, 0.5)] {
        let (mut babble_seen, mut speed_seen) = (false, 0);
        for _ in 0..1000 {
            let c = draw(&mut rng, babble, voice);
            assert_eq!(c.to_string().parse::<Condition>().unwrap(), c, "{c}");
            // One gain, and the documented order: speed, reverb, noise, gain, floor, telephone,
            // rate.
            let rank = |s: &Step| match s {
                Step::Speed { .. } => -1,
                Step::Reverb { .. } => 0,
                Step::Noise { .. } => 1,
                Step::Gain { .. } => 2,
                Step::Floor { .. } => 3,
                Step::Telephone { .. } => 4,
                Step::Rate { .. } => 5,
            };
            let ranks: Vec<i32> = c.steps.iter().map(rank).collect();
            assert!(
                ranks.windows(2).all(|w| w[0] < w[1]) && ranks.contains(&2),
                "{c}"
            );
            babble_seen |= c.needs_babble();
            speed_seen += c
                .steps
                .iter()
                .filter(|s| matches!(s, Step::Speed { .. }))
                .count();
            for step in &c.steps {
                let ok = match *step {
                    Step::Gain { db } => (-35.0..=5.0).contains(&db),
                    Step::Noise { snr_db, .. } => (0.0..=30.0).contains(&snr_db),
                    Step::Reverb { rt60, drr_db } => {
                        (0.2..=1.0).contains(&rt60) && (-5.0..=10.0).contains(&drr_db)
                    }
                    Step::Floor { dbfs } => (-95.0..=-65.0).contains(&dbfs),
                    Step::Telephone { .. } => true,
                    Step::Rate { hz } => hz == 44100 || hz == 48000,
                    Step::Speed { factor } => (0.9..=1.1).contains(&factor) && factor != 1.0,
                };
                assert!(ok, "{c}");
            }
        }
        assert_eq!(babble_seen, babble);
        // About half the copies with voice 0.5 (a factor rounding to 1.0 draws none), none at 0.
        if voice == 0.0 {
            assert_eq!(speed_seen, 0);
        } else {
            assert!((420..=580).contains(&speed_seen), "{speed_seen}");
        }
    }
}

/// Speed perturbation plays the recording faster: duration divides by the factor and a tone's
/// pitch multiplies by it, at the input's rate.
#[test]
fn speed_scales_duration_and_pitch() {
    let rate = 16000;
    let tone: Vec<f32> = (0..rate)
        .map(|i| (2.0 * std::f32::consts::PI * 200.0 * i as f32 / rate as f32).sin() * 0.5)
        .collect();
    let c: Condition = "speed:1.1".parse().unwrap();
    let out = c
        .apply(
            Audio {
                samples: tone,
                rate,
            },
            1,
            &[],
        )
        .unwrap();
    assert_eq!(out.rate, rate);
    let expected = (f64::from(rate) / 1.1).round();
    assert!(
        (out.samples.len() as f64 - expected).abs() <= 2.0,
        "{}",
        out.samples.len()
    );
    // Zero crossings of the middle half: 2 per period of 220 Hz.
    let mid = &out.samples[out.samples.len() / 4..3 * out.samples.len() / 4];
    let crossings = mid
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let hz = crossings as f64 / 2.0 / (mid.len() as f64 / f64::from(rate));
    assert!((hz - 220.0).abs() < 3.0, "{hz}");
    assert!("speed:3".parse::<Condition>().is_err());
}

/// Twenty `gain:40` drive the samples past f32's range (to infinity) and nineteen to 1e37:
/// either is an error naming the step that crossed serd's bound (±1000), before the `rate:`
/// step's resampler meets it; a chain that stays within the bound is applied.
#[test]
fn a_chain_that_overflows_is_an_error_naming_the_step() {
    let speech = sine(200.0, 0.3, 16000, 0.5);
    for n in [19, 20] {
        let spec = format!("{}rate:48000", "gain:40+".repeat(n));
        let c: Condition = spec.parse().unwrap();
        let err = c.apply(speech.clone(), 0, &[]).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::Overflow { ref step, .. } if step == "gain:40"),
            "{message}"
        );
        assert!(message.contains("beyond the ±1000"), "{message}");
    }
    let loud = apply("gain:40+gain:10+rate:48000", &speech, 0);
    assert!(loud
        .samples
        .iter()
        .all(|x| x.is_finite() && x.abs() <= 1000.0));
}
