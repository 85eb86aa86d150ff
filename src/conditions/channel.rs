//! What lies between the talker and the recording: rooms (synthetic impulse responses, FFT
//! convolution), the telephone band and its companding, and sample-rate conversion.

use realfft::RealFftPlanner;

use super::{Companding, Error};
use crate::audio::resample::Resampler;
use crate::rng::Rng;

pub(super) fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, Error> {
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
pub(super) fn room_response(rate: u32, rt60: f64, drr_db: f64, rng: &mut Rng) -> Vec<f32> {
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
pub(super) fn convolve(x: &[f32], h: &[f32]) -> Result<Vec<f32>, Error> {
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
pub(super) struct Biquad {
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
pub(super) fn band_pass(x: &mut [f32], rate: u32) {
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
pub(super) fn compand(x: f32, law: Companding) -> f32 {
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
