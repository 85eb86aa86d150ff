//! Streaming resampling to a fixed rate with rubato's synchronous FFT resampler.
//!
//! Input comes in chunks of any size; output is delay-compensated (rubato's filter delay is
//! trimmed at the start) and, after [`Resampler::flush`], exactly `round(n_in * rate_out /
//! rate_in)` samples long, so time stamps downstream stay aligned with the input. Processing
//! reuses preallocated buffers: no allocation once the output vector has grown.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _, WindowFunction};

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    Construction { from: u32, to: u32, reason: String },
    #[error("resampling failed: {0}")]
    Process(String),
}

/// The resampler's chunk, in samples at the lower of its two rates: 10 ms at 16 kHz.
const CHUNK_AT_LOWER_RATE: usize = 160;

/// Mono resampler from `rate_in` to `rate_out`; a pass-through when they are equal.
pub struct Resampler {
    fft: Option<Fft<f32>>,
    ratio: f64,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    /// Output samples still to drop: rubato's delay.
    skip: usize,
    consumed: u64,
    produced: u64,
}

impl Resampler {
    pub fn new(rate_in: u32, rate_out: u32) -> Result<Resampler, ResampleError> {
        let ratio = f64::from(rate_out) / f64::from(rate_in);
        if rate_in == rate_out {
            return Ok(Resampler {
                fft: None,
                ratio,
                pending: Vec::new(),
                scratch: Vec::new(),
                skip: 0,
                consumed: 0,
                produced: 0,
            });
        }
        // The FFT filter spans one chunk and delays the output by half of it, and nothing comes
        // out before a chunk is full: the chunk is the latency the resampler adds to `listen`.
        // 160 samples at the lower of the two rates (10 ms at 16 kHz) keeps it near 10 ms. The
        // FFT drops everything above the lower rate's Nyquist frequency (no aliasing, whatever the
        // window); the Hann window keeps the passband flat to 95 % of it (7.6 kHz, sox's default
        // bandwidth) with so short a filter (`response_is_flat_to_7_6_khz_and_nothing_aliases`).
        let chunk = CHUNK_AT_LOWER_RATE * rate_in as usize / rate_in.min(rate_out).max(1) as usize;
        let fft = Fft::<f32>::new_custom(
            rate_in as usize,
            rate_out as usize,
            chunk,
            1,
            1,
            WindowFunction::Hann,
            FixedSync::Input,
        )
        .map_err(|e| ResampleError::Construction {
            from: rate_in,
            to: rate_out,
            reason: e.to_string(),
        })?;
        let skip = fft.output_delay();
        let pending = Vec::with_capacity(fft.input_frames_max());
        let scratch = vec![0.0; fft.output_frames_max()];
        Ok(Resampler {
            fft: Some(fft),
            ratio,
            pending,
            scratch,
            skip,
            consumed: 0,
            produced: 0,
        })
    }

    /// Resamples `input`, appending the output available so far to `out`.
    pub fn process(&mut self, mut input: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        self.consumed += input.len() as u64;
        let Some(chunk) = self.fft.as_ref().map(|f| f.input_frames_next()) else {
            out.extend_from_slice(input);
            self.produced += input.len() as u64;
            return Ok(());
        };
        while !input.is_empty() {
            let take = (chunk - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == chunk {
                self.run_chunk(None, out)?;
            }
        }
        Ok(())
    }

    /// Ends the input: resamples what is buffered and the filter's tail, and trims the output to
    /// the exact resampled length.
    pub fn flush(&mut self, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        if self.fft.is_none() {
            return Ok(());
        }
        let expected = (self.consumed as f64 * self.ratio).round() as u64;
        let start = out.len();
        while self.produced < expected {
            let fill = self.pending.len();
            let fft = self.fft.as_ref().expect("checked above");
            self.pending.resize(fft.input_frames_next(), 0.0);
            self.run_chunk(Some(fill), out)?;
        }
        let excess = (self.produced - expected) as usize;
        out.truncate(out.len().saturating_sub(excess).max(start));
        self.produced = expected;
        Ok(())
    }

    fn run_chunk(
        &mut self,
        partial: Option<usize>,
        out: &mut Vec<f32>,
    ) -> Result<(), ResampleError> {
        let fft = self.fft.as_mut().expect("only called when resampling");
        let frames_in = self.pending.len();
        let input = InterleavedSlice::new(&self.pending[..], 1, frames_in)
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        let frames_out = self.scratch.len();
        let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], 1, frames_out)
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        // rubato unwraps its FFTs' results, which fail on samples that overflow them: serd
        // bounds samples where they enter ([`crate::audio::sanitize`]), and a panic that gets
        // here all the same is an error for this stream, not the end of the process.
        let (_, written) = crate::contain::contain(|| {
            fft.process_into_buffer(&input, &mut output, indexing.as_ref())
        })
        .map_err(|panic| ResampleError::Process(format!("the resampler failed ({panic})")))?
        .map_err(|e| ResampleError::Process(e.to_string()))?;
        self.pending.clear();
        let dropped = self.skip.min(written);
        self.skip -= dropped;
        out.extend_from_slice(&self.scratch[dropped..written]);
        self.produced += (written - dropped) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32 * 0.5
            })
            .collect()
    }

    /// Resamples in uneven chunks and checks length and that a tone stays a tone, in phase.
    fn check(rate_in: u32) {
        let input = sine(rate_in, 440.0, 1.3);
        let mut r = Resampler::new(rate_in, 16_000).unwrap();
        let mut out = Vec::new();
        for chunk in input.chunks(997) {
            r.process(chunk, &mut out).unwrap();
        }
        r.flush(&mut out).unwrap();
        let expected = (input.len() as f64 * 16_000.0 / f64::from(rate_in)).round() as usize;
        assert_eq!(out.len(), expected);
        let reference = sine(16_000, 440.0, 1.3);
        // Away from the edges the output is the same tone, sample for sample (delay removed).
        let worst = out[800..expected - 800]
            .iter()
            .zip(&reference[800..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        // Integer ratios align exactly (within the short filter's passband ripple, under -80 dB);
        // others keep a fraction of a sample of delay after rubato's whole-sample delay is
        // trimmed: under 0.4 sample at 16 kHz (25 us) for a 440 Hz tone at 0.5.
        let tolerance = if rate_in.is_multiple_of(16_000) || 16_000u32.is_multiple_of(rate_in) {
            1e-4
        } else {
            0.04
        };
        assert!(worst < tolerance, "{rate_in} Hz: worst deviation {worst}");
    }

    #[test]
    fn resamples_common_rates_aligned_and_exact_length() {
        for rate in [8_000, 22_050, 44_100, 48_000, 96_000] {
            check(rate);
        }
    }

    /// Samples at serd's bound come through finite; samples that overflow the FFT (which serd
    /// never lets in) are an error, not a panic.
    #[test]
    fn extreme_samples_are_resampled_or_an_error_never_a_panic() {
        let bound: Vec<f32> = (0..9_600)
            .map(|i| crate::audio::SAMPLE_LIMIT * if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let mut r = Resampler::new(48_000, 16_000).unwrap();
        let mut out = Vec::new();
        r.process(&bound, &mut out).unwrap();
        r.flush(&mut out).unwrap();
        assert!(!out.is_empty() && out.iter().all(|x| x.is_finite()));

        let mut huge = vec![0.0f32; 9_600];
        huge[100] = 2e38;
        huge[101] = 2e38;
        let mut r = Resampler::new(48_000, 16_000).unwrap();
        let result = r.process(&huge, &mut out).and_then(|()| r.flush(&mut out));
        assert!(
            matches!(result, Err(ResampleError::Process(_))),
            "{result:?}"
        );
    }

    /// Gain in dB of a tone at `freq` through the resampler to 16 kHz, away from the edges.
    fn gain_db(rate_in: u32, freq: f64) -> f64 {
        let input = sine(rate_in, freq, 1.0);
        let mut r = Resampler::new(rate_in, 16_000).unwrap();
        let mut out = Vec::new();
        r.process(&input, &mut out).unwrap();
        r.flush(&mut out).unwrap();
        let mid = &out[2000..out.len() - 2000];
        let power = mid.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / mid.len() as f64;
        10.0 * (power / 0.125).log10()
    }

    /// The passband is flat (within 0.05 dB) to 7.6 kHz and a tone above 8 kHz, which would
    /// alias, is gone (more than 120 dB down), at the rates microphones deliver.
    #[test]
    fn response_is_flat_to_7_6_khz_and_nothing_aliases() {
        for rate in [44_100, 48_000, 96_000] {
            for freq in [100.0, 1000.0, 4000.0, 7000.0, 7600.0] {
                let gain = gain_db(rate, freq);
                assert!(gain.abs() < 0.05, "{rate} Hz, {freq} Hz tone: {gain:.3} dB");
            }
            for freq in [8050.0, 9000.0, 15_000.0, 21_000.0] {
                let gain = gain_db(rate, freq);
                assert!(gain < -120.0, "{rate} Hz, {freq} Hz tone: {gain:.1} dB");
            }
        }
    }

    #[test]
    fn passes_16k_through_unchanged() {
        let input = sine(16_000, 300.0, 0.5);
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        let mut out = Vec::new();
        r.process(&input, &mut out).unwrap();
        r.flush(&mut out).unwrap();
        assert_eq!(out, input);
    }
}
