//! Audio in: decoding files to mono samples ([`decode`]) and resampling to 16 kHz ([`resample`]).
//!
//! [`Sanitizer`] is serd's one rule for extreme samples, applied where audio enters serd (the
//! file decoder, stdin, the microphone) before anything else touches them.

pub mod decode;
pub mod resample;

/// The largest sample magnitude serd takes: 1000, 60 dB above full scale (±1). Float files and
/// drivers may hold values beyond ±1 (overs a float mix keeps), but nothing a microphone or an
/// encoder produces comes near this; beyond it a sample is damage (random bytes read as floats,
/// a broken converter), and left alone it overflows the resampler's FFT and openSMILE's energies
/// (samples of 2e38 did). Such samples are clipped to the bound.
pub const SAMPLE_LIMIT: f32 = 1000.0;

/// The mean of the channels of each interleaved frame, appended to `out`: serd's one down-mix, of
/// files, stdin and microphones alike.
pub fn downmix(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels <= 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() * scale),
    );
}

/// What [`sanitize`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sanitized {
    /// Samples that were not numbers (NaN, ±∞), now silence.
    pub non_finite: usize,
    /// Samples beyond ±[`SAMPLE_LIMIT`], now clipped to it.
    pub clipped: usize,
}

/// serd's rule for extreme samples: those that are not numbers (NaN, ±∞, which float WAV files
/// and drivers can hold) are silence; those beyond ±[`SAMPLE_LIMIT`] are clipped to it.
pub fn sanitize(samples: &mut [f32]) -> Sanitized {
    let mut seen = Sanitized::default();
    for x in samples.iter_mut() {
        if !x.is_finite() {
            *x = 0.0;
            seen.non_finite += 1;
        } else if x.abs() > SAMPLE_LIMIT {
            *x = SAMPLE_LIMIT.copysign(*x);
            seen.clipped += 1;
        }
    }
    seen
}

/// [`sanitize`] for one stream (a file, stdin, a device), with at most one warning of each kind
/// naming it: a bad stream is read on, never stopped, and never floods stderr.
#[derive(Debug)]
pub struct Sanitizer {
    /// The stream as named in warnings (a file's path, "the input device").
    name: String,
    warned: Sanitized,
}

impl Sanitizer {
    pub fn new(name: String) -> Sanitizer {
        Sanitizer {
            name,
            warned: Sanitized::default(),
        }
    }

    /// Applies the rule to `samples`, warning the first time each kind of sample is met.
    pub fn apply(&mut self, samples: &mut [f32]) {
        let seen = sanitize(samples);
        if seen.non_finite > 0 && self.warned.non_finite == 0 {
            log::warn!(
                "{}: holds samples that are not numbers (NaN or infinite); they are read as \
                 silence",
                self.name
            );
        }
        if seen.clipped > 0 && self.warned.clipped == 0 {
            log::warn!(
                "{}: holds samples beyond ±{SAMPLE_LIMIT} (60 dB above full scale: damaged or not \
                 audio); they are clipped to ±{SAMPLE_LIMIT}",
                self.name
            );
        }
        self.warned.non_finite += seen.non_finite;
        self.warned.clipped += seen.clipped;
    }

    /// What was changed so far.
    pub fn seen(&self) -> Sanitized {
        self.warned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_samples_become_silence_and_huge_ones_are_clipped() {
        let mut x = [
            0.5,
            f32::NAN,
            f32::INFINITY,
            -0.25,
            f32::NEG_INFINITY,
            2e38,
            -1001.0,
            999.0,
            f32::MAX,
        ];
        assert_eq!(
            sanitize(&mut x),
            Sanitized {
                non_finite: 3,
                clipped: 3
            }
        );
        assert_eq!(
            x,
            [0.5, 0.0, 0.0, -0.25, 0.0, 1000.0, -1000.0, 999.0, 1000.0]
        );
    }

    #[test]
    fn the_sanitizer_counts_across_calls() {
        let mut s = Sanitizer::new("x".into());
        s.apply(&mut [1e30, 0.0]);
        s.apply(&mut [f32::NAN, -1e30]);
        assert_eq!(
            s.seen(),
            Sanitized {
                non_finite: 1,
                clipped: 2
            }
        );
    }
}
