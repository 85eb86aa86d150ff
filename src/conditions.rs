//! Simulated recording conditions: level, noise, rooms, telephone channels and sample rates.
//!
//! A model trained on clean studio speech meets quiet laptops, noisy cafés, reverberant rooms and
//! phone lines. The same [`Condition`] chain serves training augmentation ([`draw`]) and
//! evaluation (`serd eval --condition white:10`), so what is measured is what is trained for.
//! Everything is pure Rust and seeded: the same seed gives the same samples on every platform.

use std::fmt;
use std::str::FromStr;

use realfft::RealFftPlanner;

use crate::audio::resample::{ResampleError, Resampler};
use crate::rng::Rng;

/// Revision of the simulation, part of the feature cache's key: bumped whenever the same
/// condition, seed and talkers would give other audio.
pub const REVISION: u32 = 2;

/// Mono audio at a sample rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub rate: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Noise {
    White,
    Pink,
    Brown,
    Babble,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Companding {
    MuLaw,
    ALaw,
}

impl Noise {
    const ALL: [Noise; 4] = [Noise::White, Noise::Pink, Noise::Brown, Noise::Babble];

    /// The step name in the text form.
    pub fn name(self) -> &'static str {
        match self {
            Noise::White => "white",
            Noise::Pink => "pink",
            Noise::Brown => "brown",
            Noise::Babble => "babble",
        }
    }
}

impl Companding {
    const ALL: [Companding; 2] = [Companding::MuLaw, Companding::ALaw];

    /// The value in the text form (`telephone:mulaw`).
    pub fn name(self) -> &'static str {
        match self {
            Companding::MuLaw => "mulaw",
            Companding::ALaw => "alaw",
        }
    }
}

/// One transformation.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Digital gain in dB.
    Gain { db: f64 },
    /// Additive noise at an SNR in dB relative to the speech's active level.
    Noise { kind: Noise, snr_db: f64 },
    /// A stationary white noise floor at an absolute level, dBFS RMS (e.g. -60).
    Floor { dbfs: f64 },
    /// A synthetic room: RT60 seconds, direct-to-reverberant ratio dB.
    Reverb { rt60: f64, drr_db: f64 },
    /// Telephone channel: 300–3400 Hz band-pass, 8 kHz, 8-bit companding; stays at 8 kHz.
    Telephone { companding: Companding },
    /// Render at this sample rate.
    Rate { hz: u32 },
}

/// A chain of steps applied left to right; text form `reverb:0.6:0+white:20+rate:44100`, `clean`
/// for the empty chain. [`fmt::Display`] prints the canonical form, which parses back to an equal
/// condition.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Condition {
    pub steps: Vec<Step>,
}

/// A condition that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sample {index} is not finite ({value})")]
    NonFinite { index: usize, value: f32 },
    #[error("sample rate 0 Hz")]
    ZeroRate,
    #[error("invalid step {step}: {reason}")]
    Invalid { step: String, reason: String },
    #[error("babble noise: {0}")]
    Babble(String),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error("convolution failed: {0}")]
    Fft(String),
}

/// A condition spec that does not parse; `token` is the offending step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad condition step {token:?}: {reason}")]
pub struct ParseError {
    pub token: String,
    pub reason: String,
}

/// What the text form accepts, quoted in parse errors.
const ACCEPTED: &str = "accepted: clean, gain:DB, white|pink|brown|babble:SNR_DB, floor:DBFS, \
                        reverb:RT60[:DRR_DB], telephone[:mulaw|alaw], rate:HZ, joined by '+'";
/// Reference level when the input has no energy at all, so noise steps still add something.
const SILENT_REFERENCE_DBFS: f64 = -50.0;
/// Frames for the active level: 10 ms, active when within 30 dB of the loudest frame.
const FRAME_S: f64 = 0.01;
const ACTIVE_RANGE_DB: f64 = 30.0;
/// Talkers summed into babble: enough to be unintelligible, few enough to stay speech-like.
const BABBLE_TALKERS: usize = 4;
/// Samples run through the coloured-noise filters before output, so they start in steady state.
const WARMUP: usize = 4096;
const TELEPHONE_RATE: u32 = 8000;

impl FromStr for Condition {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Condition, ParseError> {
        let s = s.trim();
        if s == "clean" {
            return Ok(Condition::default());
        }
        let steps = s
            .split('+')
            .map(|token| {
                let token = token.trim();
                let bad = |reason: String| ParseError {
                    token: token.to_string(),
                    reason,
                };
                match token {
                    "" => Err(ParseError {
                        token: s.to_string(),
                        reason: format!("empty step; {ACCEPTED}"),
                    }),
                    "clean" => Err(bad("clean is the empty chain, not a step".into())),
                    _ => parse_step(token).map_err(bad),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Condition { steps })
    }
}

fn parse_step(token: &str) -> Result<Step, String> {
    let mut parts = token.split(':');
    let name = parts.next().unwrap_or_default();
    let values: Vec<&str> = parts.map(str::trim).collect();
    let arity = |lo: usize, hi: usize, usage: &str| {
        if (lo..=hi).contains(&values.len()) {
            Ok(())
        } else if values.len() < lo {
            Err(format!("missing value, write {usage}"))
        } else {
            Err(format!("too many values, write {usage}"))
        }
    };
    let number = |i: usize, what: &str| {
        let v = values[i];
        v.parse::<f64>()
            .map_err(|_| format!("{what} {v:?} is not a number"))
    };
    let step = match name {
        "gain" => {
            arity(1, 1, "gain:DB")?;
            Step::Gain {
                db: number(0, "gain")?,
            }
        }
        "floor" => {
            arity(1, 1, "floor:DBFS")?;
            Step::Floor {
                dbfs: number(0, "floor")?,
            }
        }
        "reverb" => {
            arity(1, 2, "reverb:RT60[:DRR_DB]")?;
            let rt60 = number(0, "RT60")?;
            let drr_db = if values.len() == 2 {
                number(1, "DRR")?
            } else {
                0.0
            };
            Step::Reverb { rt60, drr_db }
        }
        "telephone" => {
            arity(0, 1, "telephone[:mulaw|alaw]")?;
            let companding = match values.first() {
                None => Companding::MuLaw,
                Some(v) => *Companding::ALL
                    .iter()
                    .find(|c| c.name() == *v)
                    .ok_or_else(|| format!("unknown companding {v:?}; accepted: mulaw, alaw"))?,
            };
            Step::Telephone { companding }
        }
        "rate" => {
            arity(1, 1, "rate:HZ")?;
            let v = values[0];
            let hz = v
                .parse::<u32>()
                .map_err(|_| format!("rate {v:?} is not a whole number of Hz"))?;
            Step::Rate { hz }
        }
        _ => {
            let Some(&kind) = Noise::ALL.iter().find(|k| k.name() == name) else {
                return Err(format!("unknown step {name:?}; {ACCEPTED}"));
            };
            arity(1, 1, &format!("{name}:SNR_DB"))?;
            Step::Noise {
                kind,
                snr_db: number(0, "SNR")?,
            }
        }
    };
    check(&step)?;
    Ok(step)
}

/// Range checks shared by parsing and [`Condition::apply`] (conditions can be built in code).
fn check(step: &Step) -> Result<(), String> {
    fn within(what: &str, v: f64, lo: f64, hi: f64) -> Result<(), String> {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(format!("{what} {v} is outside {lo}..={hi}"))
        }
    }
    match *step {
        Step::Gain { db } => within("gain dB", db, -80.0, 40.0),
        Step::Noise { snr_db, .. } => within("SNR dB", snr_db, -20.0, 60.0),
        Step::Floor { dbfs } => within("floor dBFS", dbfs, -120.0, -20.0),
        Step::Reverb { rt60, drr_db } => {
            within("RT60 s", rt60, 0.05, 3.0)?;
            within("DRR dB", drr_db, -20.0, 30.0)
        }
        Step::Telephone { .. } => Ok(()),
        Step::Rate { hz } => within("rate Hz", f64::from(hz), 8000.0, 192000.0),
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Step::Gain { db } => write!(f, "gain:{db}"),
            Step::Noise { kind, snr_db } => write!(f, "{}:{snr_db}", kind.name()),
            Step::Floor { dbfs } => write!(f, "floor:{dbfs}"),
            Step::Reverb { rt60, drr_db } => write!(f, "reverb:{rt60}:{drr_db}"),
            Step::Telephone { companding } => write!(f, "telephone:{}", companding.name()),
            Step::Rate { hz } => write!(f, "rate:{hz}"),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return f.write_str("clean");
        }
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

impl Condition {
    pub fn is_clean(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn needs_babble(&self) -> bool {
        self.steps.iter().any(|s| {
            matches!(
                s,
                Step::Noise {
                    kind: Noise::Babble,
                    ..
                }
            )
        })
    }

    /// Applies the chain to `audio`. `seed` fixes noise, babble choices and rooms; each step draws
    /// from its own stream, so adding a step does not change the others' randomness. `babble`
    /// holds other talkers' utterances (any rate) for babble noise.
    pub fn apply(&self, audio: Audio, seed: u64, babble: &[Audio]) -> Result<Audio, Error> {
        for step in &self.steps {
            check(step).map_err(|reason| Error::Invalid {
                step: step.to_string(),
                reason,
            })?;
        }
        if self.needs_babble() && babble.is_empty() {
            return Err(Error::Babble(
                "needs other talkers' recordings; none were given".into(),
            ));
        }
        check_samples(&audio.samples)?;
        if audio.samples.is_empty() {
            return Ok(audio);
        }
        if audio.rate == 0 {
            return Err(Error::ZeroRate);
        }
        let mut seeds = Rng::new(seed);
        self.steps.iter().try_fold(audio, |audio, step| {
            apply_step(step, audio, &mut Rng::new(seeds.next_u64()), babble)
        })
    }
}

fn check_samples(samples: &[f32]) -> Result<(), Error> {
    match samples.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            index,
            value: samples[index],
        }),
        None => Ok(()),
    }
}

fn apply_step(step: &Step, audio: Audio, rng: &mut Rng, babble: &[Audio]) -> Result<Audio, Error> {
    let Audio {
        mut samples,
        mut rate,
    } = audio;
    if samples.is_empty() {
        // A resampled-away snippet: nothing to process, only the rate moves on.
        let rate = match *step {
            Step::Rate { hz } => hz,
            Step::Telephone { .. } => TELEPHONE_RATE,
            _ => rate,
        };
        return Ok(Audio { samples, rate });
    }
    match *step {
        Step::Gain { db } => scale(&mut samples, db_to_amplitude(db)),
        Step::Noise { kind, snr_db } => {
            let level = active_level(&samples, rate)
                .unwrap_or_else(|| db_to_amplitude(SILENT_REFERENCE_DBFS));
            let n = samples.len();
            let noise = match kind {
                Noise::White => white(n, rng),
                Noise::Pink => pink(n, rng),
                Noise::Brown => brown(n, rng),
                Noise::Babble => babble_noise(n, rate, rng, babble)?,
            };
            add_scaled(&mut samples, &noise, level / db_to_amplitude(snr_db));
        }
        Step::Floor { dbfs } => {
            let noise = white(samples.len(), rng);
            add_scaled(&mut samples, &noise, db_to_amplitude(dbfs));
        }
        Step::Reverb { rt60, drr_db } => {
            let before = active_level(&samples, rate);
            samples = convolve(&samples, &room_response(rate, rt60, drr_db, rng))?;
            // A room changes timbre, not loudness: keep the input's active level.
            if let (Some(b), Some(a)) = (before, active_level(&samples, rate)) {
                scale(&mut samples, b / a);
            }
        }
        Step::Telephone { companding } => {
            band_pass(&mut samples, rate);
            samples = resample(&samples, rate, TELEPHONE_RATE)?;
            rate = TELEPHONE_RATE;
            for x in &mut samples {
                *x = compand(*x, companding);
            }
        }
        Step::Rate { hz } => {
            samples = resample(&samples, rate, hz)?;
            rate = hz;
        }
    }
    Ok(Audio { samples, rate })
}

/// Draws a random condition for augmentation. Each part is independent:
/// - gain, always: uniform -35..+5 dB (quiet laptops to hot recordings);
/// - noise, p = 0.6: babble with p = 0.4 (only if `babble_available`), else white, pink or brown
///   equally; SNR uniform 0..30 dB;
/// - reverb, p = 0.4: RT60 uniform 0.2..1.0 s, DRR uniform -5..10 dB;
/// - telephone, p = 0.3: µ-law or A-law equally;
/// - floor, p = 0.25: uniform -95..-65 dBFS (after the gain, so a quiet recording can sit close to it);
/// - rate, p = 0.3: 44100 or 48000 Hz.
///
/// Steps come in the order reverb, noise, gain, floor, telephone, rate: the room first, then the
/// microphone's noise, then the level, then the channel. Values are rounded (0.1 dB, 0.01 s) so
/// that logged conditions stay readable; rounding keeps them within the ranges.
pub fn draw(rng: &mut Rng, babble_available: bool) -> Condition {
    let tenth = |x: f64| (x * 10.0).round() / 10.0 + 0.0; // + 0.0 turns -0 into 0
    let mut steps = Vec::new();
    if rng.uniform() < 0.4 {
        let rt60 = (rng.range(0.2, 1.0) * 100.0).round() / 100.0;
        steps.push(Step::Reverb {
            rt60,
            drr_db: tenth(rng.range(-5.0, 10.0)),
        });
    }
    if rng.uniform() < 0.6 {
        // Babble, the hardest and commonest noise, in 40 % of noisy copies; the stationary
        // kinds share the rest. Noise::ALL ends with Babble.
        let kind = if babble_available && rng.uniform() < 0.4 {
            Noise::Babble
        } else {
            Noise::ALL[rng.below(3)]
        };
        steps.push(Step::Noise {
            kind,
            snr_db: tenth(rng.range(0.0, 30.0)),
        });
    }
    steps.push(Step::Gain {
        db: tenth(rng.range(-35.0, 5.0)),
    });
    if rng.uniform() < 0.25 {
        steps.push(Step::Floor {
            dbfs: tenth(rng.range(-95.0, -65.0)),
        });
    }
    if rng.uniform() < 0.3 {
        let companding = if rng.uniform() < 0.5 {
            Companding::MuLaw
        } else {
            Companding::ALaw
        };
        steps.push(Step::Telephone { companding });
    }
    if rng.uniform() < 0.3 {
        let hz = if rng.uniform() < 0.5 { 44100 } else { 48000 };
        steps.push(Step::Rate { hz });
    }
    Condition { steps }
}

fn db_to_amplitude(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

fn scale(x: &mut [f32], gain: f64) {
    for v in x {
        *v = (f64::from(*v) * gain) as f32;
    }
}

fn add_scaled(x: &mut [f32], noise: &[f32], gain: f64) {
    for (v, n) in x.iter_mut().zip(noise) {
        *v = (f64::from(*v) + f64::from(*n) * gain) as f32;
    }
}

/// RMS over the 10 ms frames within 30 dB of the loudest: a simple stand-in for ITU-T P.56's
/// active speech level, so pauses do not make SNRs look better than they sound. Frames of exact
/// digital silence never count; `None` when there is no energy at all.
fn active_level(x: &[f32], rate: u32) -> Option<f64> {
    let frame = ((f64::from(rate) * FRAME_S) as usize).max(1);
    let frames: Vec<(f64, usize)> = x
        .chunks(frame)
        .map(|c| {
            (
                c.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>(),
                c.len(),
            )
        })
        .filter(|&(energy, _)| energy > 0.0)
        .collect();
    let loudest = frames
        .iter()
        .map(|&(e, n)| e / n as f64)
        .fold(0.0, f64::max);
    if loudest == 0.0 {
        return None;
    }
    let threshold = loudest * 10f64.powf(-ACTIVE_RANGE_DB / 10.0);
    let (energy, count) = frames
        .iter()
        .filter(|&&(e, n)| e / n as f64 >= threshold)
        .fold((0.0, 0usize), |(e, n), &(fe, fn_)| (e + fe, n + fn_));
    Some((energy / count as f64).sqrt())
}

fn normalise(x: Vec<f64>) -> Vec<f32> {
    let rms = (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt();
    let gain = if rms > 0.0 { 1.0 / rms } else { 0.0 };
    x.into_iter().map(|v| (v * gain) as f32).collect()
}

/// Gaussian white noise, unit RMS.
fn white(n: usize, rng: &mut Rng) -> Vec<f32> {
    normalise((0..n).map(|_| rng.normal()).collect())
}

/// Pink (-3 dB/octave) noise, unit RMS: Paul Kellet's refined filter on white noise.
fn pink(n: usize, rng: &mut Rng) -> Vec<f32> {
    let mut b = [0.0f64; 7];
    let mut next = || {
        let w = rng.normal();
        b[0] = 0.99886 * b[0] + w * 0.0555179;
        b[1] = 0.99332 * b[1] + w * 0.0750759;
        b[2] = 0.96900 * b[2] + w * 0.1538520;
        b[3] = 0.86650 * b[3] + w * 0.3104856;
        b[4] = 0.55000 * b[4] + w * 0.5329522;
        b[5] = -0.7616 * b[5] - w * 0.0168980;
        let out = b.iter().sum::<f64>() + w * 0.5362;
        b[6] = w * 0.115926;
        out
    };
    normalise((0..WARMUP + n).map(|_| next()).skip(WARMUP).collect())
}

/// Brown (-6 dB/octave) noise, unit RMS: leaky-integrated white noise, mean removed. The leak
/// keeps it from wandering off; the mean removal keeps it from being mostly DC.
fn brown(n: usize, rng: &mut Rng) -> Vec<f32> {
    let mut y = 0.0;
    let mut x: Vec<f64> = (0..WARMUP + n)
        .map(|_| {
            y = 0.995 * y + rng.normal();
            y
        })
        .skip(WARMUP)
        .collect();
    let mean = x.iter().sum::<f64>() / n as f64;
    x.iter_mut().for_each(|v| *v -= mean);
    normalise(x)
}

/// Babble at unit active level: the first four of `talkers` (drawn again, with repeats, when fewer
/// are given), each at its own random offset, looped to `n` samples and brought to the same active level before summing.
fn babble_noise(n: usize, rate: u32, rng: &mut Rng, talkers: &[Audio]) -> Result<Vec<f32>, Error> {
    if talkers.is_empty() {
        return Err(Error::Babble(
            "needs other talkers' recordings; none were given".into(),
        ));
    }
    // Each talker given once when there are enough (the caller picks distinct recordings), else
    // drawn again.
    let picks: Vec<usize> = if talkers.len() >= BABBLE_TALKERS {
        (0..BABBLE_TALKERS).collect()
    } else {
        (0..BABBLE_TALKERS)
            .map(|_| rng.below(talkers.len()))
            .collect()
    };
    let mut prepared: Vec<Vec<f32>> = vec![Vec::new(); talkers.len()];
    for &i in &picks {
        if prepared[i].is_empty() {
            prepared[i] = prepare_talker(i, &talkers[i], rate)?;
        }
    }
    let mut mix = vec![0.0f32; n];
    for &i in &picks {
        let talker = &prepared[i];
        let offset = rng.below(talker.len());
        for (k, m) in mix.iter_mut().enumerate() {
            *m += talker[(offset + k) % talker.len()];
        }
    }
    let level = active_level(&mix, rate)
        .ok_or_else(|| Error::Babble("the chosen talkers are all silent".into()))?;
    scale(&mut mix, 1.0 / level);
    Ok(mix)
}

/// One babble talker at `rate` and unit active level (silence stays silence); never empty.
fn prepare_talker(i: usize, talker: &Audio, rate: u32) -> Result<Vec<f32>, Error> {
    let bad = |why: &str| Error::Babble(format!("talker {i} {why}"));
    if talker.rate == 0 {
        return Err(bad("has sample rate 0"));
    }
    check_samples(&talker.samples).map_err(|e| bad(&e.to_string()))?;
    let mut x = resample(&talker.samples, talker.rate, rate)?;
    if x.is_empty() {
        return Err(bad("has no samples"));
    }
    if let Some(level) = active_level(&x, rate) {
        scale(&mut x, 1.0 / level);
    }
    Ok(x)
}

fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, Error> {
    if from == to {
        return Ok(x.to_vec());
    }
    let mut resampler = Resampler::new(from, to)?;
    let mut out =
        Vec::with_capacity((x.len() as f64 * f64::from(to) / f64::from(from)) as usize + 1);
    resampler.process(x, &mut out)?;
    resampler.flush(&mut out)?;
    Ok(out)
}

/// A synthetic room impulse response: the direct sound (1.0 at t = 0), then from 2.5 ms a
/// Gaussian noise tail under the envelope exp(-6.908 t / RT60), i.e. energy down 60 dB after
/// RT60, scaled so direct / tail energy is the DRR. Dense noise is a fair model of late
/// reverberation; the length min(1.2 RT60, 2 s) keeps convolution cheap and cuts at -72 dB or less.
fn room_response(rate: u32, rt60: f64, drr_db: f64, rng: &mut Rng) -> Vec<f32> {
    let fs = f64::from(rate);
    let start = ((0.0025 * fs).round() as usize).max(1);
    let len = (((1.2 * rt60).min(2.0) * fs).round() as usize).max(start + 1);
    let mut h = vec![0.0f64; len];
    h[0] = 1.0;
    for (i, v) in h.iter_mut().enumerate().skip(start) {
        *v = rng.normal() * (-6.908 * i as f64 / fs / rt60).exp();
    }
    let tail_energy: f64 = h[start..].iter().map(|v| v * v).sum();
    let gain = (10f64.powf(-drr_db / 10.0) / tail_energy).sqrt();
    h[start..].iter_mut().for_each(|v| *v *= gain);
    h.into_iter().map(|v| v as f32).collect()
}

/// Linear convolution by FFT overlap-add, truncated to `x.len()` (the room's tail after the end of
/// the file is dropped). Blocks sized from `h` keep memory bounded for long files.
fn convolve(x: &[f32], h: &[f32]) -> Result<Vec<f32>, Error> {
    let fft_len = (2 * h.len()).next_power_of_two();
    let block = fft_len - h.len() + 1;
    let mut planner = RealFftPlanner::<f32>::new();
    let forward = planner.plan_fft_forward(fft_len);
    let inverse = planner.plan_fft_inverse(fft_len);
    let fft_error = |e: realfft::FftError| Error::Fft(e.to_string());

    let mut buf = forward.make_input_vec();
    let mut h_spec = forward.make_output_vec();
    buf[..h.len()].copy_from_slice(h);
    forward.process(&mut buf, &mut h_spec).map_err(fft_error)?;

    let mut spec = forward.make_output_vec();
    let mut out = vec![0.0f32; x.len()];
    let norm = 1.0 / fft_len as f32;
    for (b, chunk) in x.chunks(block).enumerate() {
        buf.fill(0.0);
        buf[..chunk.len()].copy_from_slice(chunk);
        forward.process(&mut buf, &mut spec).map_err(fft_error)?;
        spec.iter_mut().zip(&h_spec).for_each(|(s, h)| *s *= h);
        // DC and Nyquist bins of a real signal's spectrum are real; make it exact for realfft.
        spec[0].im = 0.0;
        if let Some(last) = spec.last_mut() {
            last.im = 0.0;
        }
        inverse.process(&mut spec, &mut buf).map_err(fft_error)?;
        for (o, v) in out[b * block..].iter_mut().zip(&buf) {
            *o += v * norm;
        }
    }
    Ok(out)
}

/// An RBJ-cookbook biquad (Butterworth Q), run in f64: a 300 Hz high-pass at 192 kHz has poles
/// too close to 1 for f32 coefficients.
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    fn new(high_pass: bool, f0: f64, fs: f64) -> Biquad {
        let w0 = 2.0 * std::f64::consts::PI * f0 / fs;
        let (cos, alpha) = (w0.cos(), w0.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2));
        let a0 = 1.0 + alpha;
        let b = if high_pass {
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0]
        } else {
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0]
        };
        Biquad {
            b: b.map(|v| v / a0),
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
        }
    }

    /// Transposed direct form II.
    fn run(&self, x: &mut [f32]) {
        let (mut z1, mut z2) = (0.0, 0.0);
        for v in x {
            let input = f64::from(*v);
            let y = self.b[0] * input + z1;
            z1 = self.b[1] * input - self.a[0] * y + z2;
            z2 = self.b[2] * input - self.a[1] * y;
            *v = y as f32;
        }
    }
}

/// The telephone band, 300–3400 Hz: each edge a 2nd-order Butterworth run twice (4th order).
/// An edge at or above the input's Nyquist frequency is skipped (the resampler band-limits).
fn band_pass(x: &mut [f32], rate: u32) {
    let fs = f64::from(rate);
    for (high_pass, f0) in [(true, 300.0), (false, 3400.0)] {
        if f0 < 0.49 * fs {
            let filter = Biquad::new(high_pass, f0, fs);
            filter.run(x);
            filter.run(x);
        }
    }
}

/// G.711-style 8-bit companding, encode then decode: clip to [-1, 1], compress with the µ-law
/// (µ = 255) or A-law (A = 87.6) curve, quantise to a sign and 7-bit magnitude (256 codes, zero
/// stays zero), expand. The quantisation noise follows the signal's level, as on a phone line.
fn compand(x: f32, law: Companding) -> f32 {
    const MU: f64 = 255.0;
    const A: f64 = 87.6;
    let a_norm = 1.0 + A.ln();
    let x = f64::from(x).clamp(-1.0, 1.0);
    let m = x.abs();
    let y = match law {
        Companding::MuLaw => (MU * m).ln_1p() / MU.ln_1p(),
        Companding::ALaw if m < 1.0 / A => A * m / a_norm,
        Companding::ALaw => (1.0 + (A * m).ln()) / a_norm,
    };
    let q = (y * 127.0).round() / 127.0;
    let decoded = match law {
        Companding::MuLaw => ((MU.ln_1p() * q).exp() - 1.0) / MU,
        Companding::ALaw if q < 1.0 / a_norm => q * a_norm / A,
        Companding::ALaw => (q * a_norm - 1.0).exp() / A,
    };
    decoded.copysign(x) as f32
}

#[cfg(test)]
mod tests {
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
        assert!("clean".parse::<Condition>().unwrap().is_clean());
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
        let change = db(active_level(&wet.samples, 16000).unwrap()
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
            db(active_level(&speech.samples, 16000).unwrap()
                / active_level(&babble, 16000).unwrap());
        assert!((snr - 5.0).abs() < 1.0, "{snr}");
        assert_eq!(c.apply(speech.clone(), 9, &talkers).unwrap(), noisy);
        assert_ne!(c.apply(speech, 10, &talkers).unwrap(), noisy);
    }

    #[test]
    fn drawn_conditions_parse_back_and_stay_in_range() {
        let mut rng = Rng::new(42);
        for babble in [false, true] {
            let mut babble_seen = false;
            for _ in 0..1000 {
                let c = draw(&mut rng, babble);
                assert_eq!(c.to_string().parse::<Condition>().unwrap(), c, "{c}");
                // One gain, and the documented order: reverb, noise, gain, floor, telephone, rate.
                let rank = |s: &Step| match s {
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
                    };
                    assert!(ok, "{c}");
                }
            }
            assert_eq!(babble_seen, babble);
        }
    }
}
