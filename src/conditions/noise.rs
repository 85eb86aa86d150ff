//! Noise: white, pink and brown generators, babble from other talkers, and the active speech
//! level that SNRs are measured against.

use super::{check_samples, resample, scale, Audio, Error};
use crate::rng::Rng;

/// Frames for the active level: 10 ms, active when within 30 dB of the loudest frame.
const FRAME_S: f64 = 0.01;
const ACTIVE_RANGE_DB: f64 = 30.0;
/// Talkers summed into babble: enough to be unintelligible, few enough to stay speech-like.
const BABBLE_TALKERS: usize = 4;
/// Samples run through the coloured-noise filters before output, so they start in steady state.
const WARMUP: usize = 4096;

/// RMS over the 10 ms frames within 30 dB of the loudest: a simple stand-in for ITU-T P.56's
/// active speech level, so pauses do not make SNRs look better than they sound. Frames of exact
/// digital silence never count; `None` when there is no energy at all.
pub(super) fn active_level(x: &[f32], rate: u32) -> Option<f64> {
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

pub(super) fn normalise(x: Vec<f64>) -> Vec<f32> {
    let rms = (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt();
    let gain = if rms > 0.0 { 1.0 / rms } else { 0.0 };
    x.into_iter().map(|v| (v * gain) as f32).collect()
}

/// Gaussian white noise, unit RMS.
pub(super) fn white(n: usize, rng: &mut Rng) -> Vec<f32> {
    normalise((0..n).map(|_| rng.normal()).collect())
}

/// Pink (-3 dB/octave) noise, unit RMS: Paul Kellet's refined filter on white noise.
pub(super) fn pink(n: usize, rng: &mut Rng) -> Vec<f32> {
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
pub(super) fn brown(n: usize, rng: &mut Rng) -> Vec<f32> {
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
pub(super) fn babble_noise(
    n: usize,
    rate: u32,
    rng: &mut Rng,
    talkers: &[Audio],
) -> Result<Vec<f32>, Error> {
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
pub(super) fn prepare_talker(i: usize, talker: &Audio, rate: u32) -> Result<Vec<f32>, Error> {
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
