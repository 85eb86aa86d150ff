//! Simulated recording conditions: level, noise, rooms, telephone channels and sample rates.
//!
//! A model trained on clean studio speech meets quiet laptops, noisy cafés, reverberant rooms and
//! phone lines. The same [`Condition`] chain serves training augmentation ([`draw`]) and
//! evaluation (`serd eval --condition white:10`), so what is measured is what is trained for.
//! Everything is pure Rust and seeded: the same seed gives the same samples on every platform.

use std::fmt;
use std::str::FromStr;

use crate::audio::resample::ResampleError;
use crate::rng::Rng;

mod channel;
mod draw;
mod noise;
#[cfg(test)]
mod tests;

use channel::{band_pass, compand, convolve, resample, room_response};
pub use draw::draw;
use noise::{active_level, babble_noise, brown, pink, white};

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
    /// Speed perturbation (Ko et al., 2015): the recording played `factor` times faster, so
    /// tempo, pitch and formants all scale by `factor`, as in another, similar voice.
    Speed { factor: f64 },
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
    /// A step (too much gain) drove samples beyond [`crate::audio::SAMPLE_LIMIT`]: not a
    /// recording condition any more, and beyond what the resampler and openSMILE take.
    #[error(
        "{step} drives samples to {peak:.1e}, beyond the ±{} serd takes (60 dB above full scale)",
        crate::audio::SAMPLE_LIMIT
    )]
    Overflow { step: String, peak: f32 },
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
                        reverb:RT60[:DRR_DB], telephone[:mulaw|alaw], rate:HZ, speed:FACTOR, \
                        joined by '+'";
/// Reference level when the input has no energy at all, so noise steps still add something.
const SILENT_REFERENCE_DBFS: f64 = -50.0;
const TELEPHONE_RATE: u32 = 8000;

impl FromStr for Condition {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Condition, ParseError> {
        let s = s.trim();
        if s == "clean" {
            return Ok(Condition::default());
        }
        // `white:+10`: the sign was read as the joiner, leaving `white:` and `10`.
        if let Some((left, right)) = s.split_once(":+") {
            let step = left.rsplit('+').next().unwrap_or(left).trim();
            let value = right.split('+').next().unwrap_or(right).trim();
            if value.parse::<f64>().is_ok() {
                return Err(ParseError {
                    token: format!("{step}:+{value}"),
                    reason: format!("'+' joins steps: write {step}:{value}, without the sign"),
                });
            }
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
        "speed" => {
            arity(1, 1, "speed:FACTOR")?;
            Step::Speed {
                factor: number(0, "speed factor")?,
            }
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
        } else if v.is_finite() && v.abs() >= 1e6 {
            // `{v}` writes 1e308 with all its 309 digits.
            Err(format!("{what} {v:e} is outside {lo}..={hi}"))
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
        Step::Speed { factor } => within("speed factor", factor, 0.5, 2.0),
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
            Step::Speed { factor } => write!(f, "speed:{factor}"),
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
            let audio = apply_step(step, audio, &mut Rng::new(seeds.next_u64()), babble)?;
            check_bound(step, &audio.samples)?;
            Ok(audio)
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

/// serd's bound on samples ([`crate::audio::SAMPLE_LIMIT`]), checked after every step: a chain
/// that overflows is an error naming the step, before a later step (a resampler) meets it.
fn check_bound(step: &Step, samples: &[f32]) -> Result<(), Error> {
    let peak = samples
        .iter()
        .map(|x| if x.is_nan() { f32::INFINITY } else { x.abs() })
        .fold(0.0f32, f32::max);
    if peak > crate::audio::SAMPLE_LIMIT {
        return Err(Error::Overflow {
            step: step.to_string(),
            peak,
        });
    }
    Ok(())
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
        Step::Speed { factor } => {
            // Rendered at rate / factor and played at rate: factor times faster.
            let slower = (f64::from(rate) / factor).round().max(1.0) as u32;
            samples = resample(&samples, rate, slower)?;
        }
    }
    Ok(Audio { samples, rate })
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
