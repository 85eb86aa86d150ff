//! Confidence calibration: temperature scaling of the ensemble's class probabilities, the
//! negative log-likelihood it is fitted on, and reliability bins with the expected calibration
//! error (ECE).
//!
//! The ensemble's output is a mean of softmax outputs, not logits, so the temperature acts on
//! log-probabilities: `calibrated_i ∝ p_i^(1/T)`, i.e. `softmax(ln p / T)`. T > 1 softens
//! (lowers the confidence of an over-confident model), T < 1 sharpens, T = 1 changes nothing,
//! and no T changes which class is largest. Probabilities are floored at [`FLOOR`] before the
//! logarithm, so a class the models gave 0 keeps a tiny share instead of producing −∞.
//!
//! ECE follows Guo et al. (2017), "On calibration of modern neural networks": top-label
//! confidence (the largest probability), equal-width bins on [0, 1] (a confidence of exactly 1
//! goes in the last bin), `ECE = Σ_b (count_b / n) · |accuracy_b − confidence_b|`.

use serde::{Deserialize, Serialize};

use crate::labels::Emotion;

const K: usize = Emotion::COUNT;

/// Probabilities are floored here before taking logarithms.
pub const FLOOR: f64 = 1e-12;

/// The smallest temperature [`fit_temperature`] considers.
pub const T_MIN: f32 = 0.05;

/// The largest temperature [`fit_temperature`] considers.
pub const T_MAX: f32 = 20.0;

/// Applies temperature `t` to probabilities, in place: `p_i ← p_i^(1/t) / Σ_j p_j^(1/t)`.
///
/// `t == 1` is the identity (the values are left exactly as they are, unnormalised ones too). A
/// temperature that is not a positive finite number also leaves `probs` unchanged.
pub fn apply(probs: &mut [f32; K], t: f32) {
    if t == 1.0 || !(t.is_finite() && t > 0.0) {
        return;
    }
    let t = f64::from(t);
    let logits = probs.map(|p| log_floored(f64::from(p)) / t);
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps = logits.map(|l| (l - max).exp());
    let sum: f64 = exps.iter().sum();
    for (p, e) in probs.iter_mut().zip(exps) {
        *p = (e / sum) as f32;
    }
}

/// The temperature in [[`T_MIN`], [`T_MAX`]] that minimises `nll_at(T)`, the mean negative
/// log-likelihood of the `n` samples it is computed on; `None` when `n == 0` or `nll_at` is
/// nowhere finite.
///
/// The caller computes the predictions for a candidate temperature, so that, for instance,
/// utterance-level means of calibrated window probabilities can be fitted as well as the
/// probabilities themselves ([`fit`]). The search is over `ln T`: a coarse grid of 25 points
/// (T = 1 among them) finds the best neighbourhood, then golden-section search refines it to
/// about 0.01% of T. A NaN from `nll_at` counts as +∞.
pub fn fit_temperature(n: usize, nll_at: impl Fn(f32) -> f64) -> Option<f32> {
    const GRID: usize = 24;
    const TOL: f64 = 1e-4;
    if n == 0 {
        return None;
    }
    let f = |u: f64| {
        let v = nll_at(temperature(u));
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    };
    let (lo, hi) = (f64::from(T_MIN).ln(), f64::from(T_MAX).ln());
    let step = (hi - lo) / GRID as f64;
    let grid: Vec<(f64, f64)> = (0..=GRID)
        .map(|i| {
            let u = lo + i as f64 * step;
            (u, f(u))
        })
        .collect();
    // The first of equal minima, so that a flat objective keeps the smallest temperature tried.
    let best_i = (0..=GRID).min_by(|&a, &b| grid[a].1.total_cmp(&grid[b].1))?;
    let mut best = grid[best_i];
    if !best.1.is_finite() {
        return None;
    }

    // Golden-section search between the grid neighbours of the best grid point.
    let inv_phi = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (
        grid[best_i.saturating_sub(1)].0,
        grid[(best_i + 1).min(GRID)].0,
    );
    let mut c = b - inv_phi * (b - a);
    let mut d = a + inv_phi * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while b - a > TOL {
        for (u, v) in [(c, fc), (d, fd)] {
            if v < best.1 {
                best = (u, v);
            }
        }
        if fc <= fd {
            (b, d, fd) = (d, c, fc);
            c = b - inv_phi * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + inv_phi * (b - a);
            fd = f(d);
        }
    }
    for (u, v) in [(c, fc), (d, fd)] {
        if v < best.1 {
            best = (u, v);
        }
    }
    Some(temperature(best.0))
}

/// The temperature minimising the mean negative log-likelihood of `truth` under the calibrated
/// `probs` (see [`fit_temperature`]); `None` when there are no samples. Pairs are taken in order
/// up to the shorter of the two slices.
pub fn fit(probs: &[[f32; K]], truth: &[Emotion]) -> Option<f32> {
    fit_temperature(probs.len().min(truth.len()), |t| {
        mean_nll(probs.iter().zip(truth).map(|(p, &y)| {
            let mut q = *p;
            apply(&mut q, t);
            (q, y)
        }))
    })
}

/// Mean negative log-likelihood (natural log) of `truth` under `probs`, each probability floored
/// at [`FLOOR`]; NaN when there are no samples. Pairs are taken in order up to the shorter of the
/// two slices.
pub fn nll(probs: &[[f32; K]], truth: &[Emotion]) -> f64 {
    mean_nll(probs.iter().zip(truth).map(|(p, &y)| (*p, y)))
}

fn mean_nll(pairs: impl Iterator<Item = ([f32; K], Emotion)>) -> f64 {
    let (sum, n) = pairs.fold((0.0, 0usize), |(sum, n), (p, y)| {
        (sum - log_floored(f64::from(p[y.index()])), n + 1)
    });
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// `ln max(p, FLOOR)`; NaN and ±∞ count as 0 and 1.
fn log_floored(p: f64) -> f64 {
    let p = if p.is_nan() { 0.0 } else { p.min(1.0) };
    p.max(FLOOR).ln()
}

fn temperature(u: f64) -> f32 {
    (u.exp() as f32).clamp(T_MIN, T_MAX)
}

/// The predicted class (the largest probability, the lowest index among equals) and its
/// probability, the confidence, clamped to [0, 1] (NaN counts as 0).
fn top(probs: &[f32; K]) -> (usize, f64) {
    let mut best = 0;
    for i in 1..K {
        if probs[i].total_cmp(&probs[best]).is_gt() {
            best = i;
        }
    }
    let c = f64::from(probs[best]);
    (best, if c.is_nan() { 0.0 } else { c.clamp(0.0, 1.0) })
}

/// Calibration of top-label confidence: samples binned by confidence (equal-width bins on
/// [0, 1]), each bin's mean confidence and accuracy, and the expected calibration error.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reliability {
    pub bins: Vec<Bin>,
    /// Expected calibration error, `Σ_b (count_b / n) · |accuracy_b − confidence_b|`; 0 when
    /// there are no samples.
    pub ece: f64,
    /// Number of samples.
    pub n: usize,
}

/// One confidence bin, `[lower, upper)` (the last one includes 1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Bin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean confidence of the bin's samples; `None` when empty.
    pub confidence: Option<f64>,
    /// Share of the bin's samples predicted correctly; `None` when empty.
    pub accuracy: Option<f64>,
}

impl Reliability {
    /// Bins `probs` against `truth` in `bins` equal-width confidence bins (at least 1; 10 is
    /// usual). Pairs are taken in order up to the shorter of the two slices. The prediction is
    /// the class with the largest probability, the lowest index among equals.
    pub fn of(probs: &[[f32; K]], truth: &[Emotion], bins: usize) -> Reliability {
        let bins = bins.max(1);
        // Per bin: count, sum of confidences, number correct.
        let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
        let mut n = 0;
        for (p, y) in probs.iter().zip(truth) {
            let (predicted, confidence) = top(p);
            let b = ((confidence * bins as f64) as usize).min(bins - 1);
            let s = &mut sums[b];
            s.0 += 1;
            s.1 += confidence;
            s.2 += usize::from(predicted == y.index());
            n += 1;
        }
        let bins: Vec<Bin> = sums
            .iter()
            .enumerate()
            .map(|(i, &(count, confidence, correct))| Bin {
                lower: i as f64 / bins as f64,
                upper: (i + 1) as f64 / bins as f64,
                count,
                confidence: (count > 0).then(|| confidence / count as f64),
                accuracy: (count > 0).then(|| correct as f64 / count as f64),
            })
            .collect();
        // (An empty sum of f64 is −0.0: none is 0.)
        let ece = bins
            .iter()
            .filter_map(|b| Some(b.count as f64 * (b.accuracy? - b.confidence?).abs()))
            .fold(0.0, |sum, x| sum + x)
            / n.max(1) as f64;
        Reliability { bins, ece, n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn softmax(z: &[f64; K], scale: f64) -> [f32; K] {
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e = z.map(|v| ((v - max) * scale).exp());
        let s: f64 = e.iter().sum();
        e.map(|v| (v / s) as f32)
    }

    /// `n` samples whose true class is drawn from `softmax(z)` (so those probabilities are
    /// calibrated by construction), reported as `softmax(z · scale)`: scale > 1 is over-confident
    /// (the right temperature is `scale`), scale < 1 under-confident.
    fn synthetic(seed: u64, n: usize, scale: f64) -> (Vec<[f32; K]>, Vec<Emotion>) {
        let mut rng = Rng::new(seed);
        let mut probs = Vec::with_capacity(n);
        let mut truth = Vec::with_capacity(n);
        for _ in 0..n {
            let signal = rng.below(K);
            let z: [f64; K] =
                std::array::from_fn(|j| 1.2 * rng.normal() + if j == signal { 1.5 } else { 0.0 });
            let calibrated = softmax(&z, 1.0);
            let u = rng.uniform() as f32;
            let mut acc = 0.0;
            let y = (0..K)
                .find(|&j| {
                    acc += calibrated[j];
                    u < acc
                })
                .unwrap_or(K - 1);
            probs.push(softmax(&z, scale));
            truth.push(Emotion::from_index(y).unwrap());
        }
        (probs, truth)
    }

    fn calibrated(probs: &[[f32; K]], t: f32) -> Vec<[f32; K]> {
        probs
            .iter()
            .map(|p| {
                let mut q = *p;
                apply(&mut q, t);
                q
            })
            .collect()
    }

    #[test]
    fn temperature_one_is_the_identity() {
        for p in [
            [0.5, 0.2, 0.15, 0.1, 0.05],
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.3, 0.3, 0.3, 0.3, 0.3],
        ] {
            let mut q = p;
            apply(&mut q, 1.0);
            assert_eq!(q, p);
        }
        // Odd temperatures change nothing either.
        let p = [0.5, 0.2, 0.15, 0.1, 0.05];
        for t in [0.0, -2.0, f32::NAN, f32::INFINITY] {
            let mut q = p;
            apply(&mut q, t);
            assert_eq!(q, p, "t = {t}");
        }
    }

    #[test]
    fn high_temperature_flattens_and_low_sharpens() {
        let p = [0.5, 0.2, 0.15, 0.1, 0.05];
        let mut flat = p;
        apply(&mut flat, 1e4);
        assert!(flat.iter().all(|&q| (q - 0.2).abs() < 1e-3), "{flat:?}");

        let mut soft = p;
        apply(&mut soft, 2.0);
        let mut sharp = p;
        apply(&mut sharp, 0.5);
        for q in [soft, sharp] {
            assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{q:?}");
            assert_eq!(top(&q).0, 0, "{q:?}");
        }
        assert!(soft[0] < p[0] && sharp[0] > p[0]);
        assert!(soft[4] > p[4] && sharp[4] < p[4]);
        // p^(1/0.5) = p², renormalised.
        let sq: f32 = p.iter().map(|v| v * v).sum();
        for (s, v) in sharp.iter().zip(p) {
            assert!((s - v * v / sq).abs() < 1e-6);
        }
        // Temperatures compose: T1 then T2 is T1·T2.
        let mut twice = p;
        apply(&mut twice, 2.0);
        apply(&mut twice, 1.5);
        let mut once = p;
        apply(&mut once, 3.0);
        for (a, b) in twice.iter().zip(once) {
            assert!((a - b).abs() < 1e-6);
        }

        // Zeros are floored rather than turned into NaN.
        let mut z = [1.0, 0.0, 0.0, 0.0, 0.0];
        apply(&mut z, 2.0);
        assert!(z.iter().all(|q| q.is_finite()) && z[0] > 0.99, "{z:?}");
        let mut z = [0.0; K];
        apply(&mut z, 3.0);
        assert_eq!(z, [0.2; K]);
    }

    #[test]
    fn fits_over_confident_predictions() {
        let (probs, truth) = synthetic(7, 4000, 3.0);
        let t = fit(&probs, &truth).unwrap();
        assert!((2.5..3.6).contains(&t), "T = {t}");
        let after = calibrated(&probs, t);
        let (nll_before, nll_after) = (nll(&probs, &truth), nll(&after, &truth));
        let ece_before = Reliability::of(&probs, &truth, 10).ece;
        let ece_after = Reliability::of(&after, &truth, 10).ece;
        eprintln!(
            "T {t}: NLL {nll_before:.4} -> {nll_after:.4}, ECE {ece_before:.4} -> {ece_after:.4}"
        );
        assert!(nll_after < nll_before - 0.1);
        assert!(ece_after < ece_before / 2.0 && ece_after < 0.05);
        // Neighbouring temperatures are no better: it is a minimum.
        for other in [t * 0.95, t * 1.05] {
            assert!(nll(&calibrated(&probs, other), &truth) > nll_after);
        }
    }

    #[test]
    fn fits_under_confident_predictions() {
        let (probs, truth) = synthetic(11, 4000, 0.5);
        let t = fit(&probs, &truth).unwrap();
        assert!((0.4..0.6).contains(&t), "T = {t}");
        assert!(nll(&calibrated(&probs, t), &truth) < nll(&probs, &truth));
    }

    #[test]
    fn calibrated_predictions_keep_temperature_one() {
        for seed in [1, 2, 3] {
            let (probs, truth) = synthetic(seed, 4000, 1.0);
            let t = fit(&probs, &truth).unwrap();
            assert!((t - 1.0).abs() < 0.15, "seed {seed}: T = {t}");
            assert!(Reliability::of(&probs, &truth, 10).ece < 0.05);
        }
    }

    #[test]
    fn fit_temperature_finds_the_minimum_of_a_function() {
        let t = fit_temperature(1, |t| (f64::from(t).ln() - 2.5f64.ln()).powi(2)).unwrap();
        assert!((t - 2.5).abs() < 1e-3, "{t}");
        // A minimum outside the range gives the nearest end.
        let t = fit_temperature(1, |t| -f64::from(t)).unwrap();
        assert!((t - T_MAX).abs() < 1e-3, "{t}");
        let t = fit_temperature(1, f64::from).unwrap();
        assert!((t - T_MIN).abs() < 1e-4, "{t}");
        // NaN is avoided.
        let t = fit_temperature(1, |t| if t < 1.0 { f64::NAN } else { f64::from(t) }).unwrap();
        assert!((t - 1.0).abs() < 1e-3, "{t}");
        assert_eq!(fit_temperature(0, |_| 0.0), None);
        assert_eq!(fit_temperature(3, |_| f64::NAN), None);
        assert_eq!(fit(&[], &[]), None);
        assert_eq!(fit(&[[0.2; K]], &[]), None);
    }

    #[test]
    fn nll_by_hand() {
        use Emotion::*;
        let probs = [[0.5, 0.2, 0.1, 0.1, 0.1], [0.0, 0.0, 1.0, 0.0, 0.0]];
        let expected = -(0.2f64.ln() + 1e-12f64.ln()) / 2.0;
        assert!((nll(&probs, &[Surprise, Anger]) - expected).abs() < 1e-6);
        assert!(nll(&probs[1..], &[Happiness]).abs() < 1e-12);
        assert!(nll(&[], &[]).is_nan());
    }

    #[test]
    fn ece_by_hand() {
        use Emotion::*;
        let probs = [
            [0.95, 0.0125, 0.0125, 0.0125, 0.0125], // bin 9, right
            [0.02, 0.92, 0.02, 0.02, 0.02],         // bin 9, wrong
            [0.0, 0.0, 0.0, 1.0, 0.0],              // bin 9 (confidence 1), right
            [0.1, 0.1, 0.65, 0.1, 0.05],            // bin 6, right
            [0.35, 0.2, 0.2, 0.15, 0.1],            // bin 3, wrong
        ];
        let truth = [Anger, Anger, Sadness, Happiness, Neutral];
        let r = Reliability::of(&probs, &truth, 10);
        assert_eq!(r.n, 5);
        assert_eq!(r.bins.len(), 10);
        let counts: Vec<usize> = r.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, [0, 0, 0, 1, 0, 0, 1, 0, 0, 3]);
        let b9 = &r.bins[9];
        assert!((b9.lower - 0.9).abs() < 1e-12 && b9.upper == 1.0);
        assert!((b9.confidence.unwrap() - (0.95 + 0.92 + 1.0) / 3.0).abs() < 1e-6);
        assert!((b9.accuracy.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            (r.bins[3].accuracy, r.bins[6].accuracy),
            (Some(0.0), Some(1.0))
        );
        assert_eq!((r.bins[0].confidence, r.bins[0].accuracy), (None, None));
        // 3/5 · |2/3 − 0.956667| + 1/5 · |1 − 0.65| + 1/5 · |0 − 0.35|
        assert!((r.ece - 0.314).abs() < 1e-6, "{}", r.ece);

        // Ties go to the lowest index.
        let tie = Reliability::of(&[[0.4, 0.4, 0.1, 0.05, 0.05]], &[Anger], 10);
        assert_eq!(tie.bins[4].accuracy, Some(1.0));
        assert!((tie.ece - 0.6).abs() < 1e-6, "{}", tie.ece);
        let json = serde_json::to_string(&r).unwrap();
        // serde_json's default float parsing may be off by an ulp.
        let back: Reliability = serde_json::from_str(&json).unwrap();
        assert_eq!((back.n, back.bins.len()), (r.n, r.bins.len()));
        assert!((back.ece - r.ece).abs() < 1e-12);
        for (a, b) in back.bins.iter().zip(&r.bins) {
            assert_eq!(
                (a.count, a.accuracy.is_some()),
                (b.count, b.accuracy.is_some())
            );
            let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) => (x - y).abs() < 1e-12,
                (x, y) => x == y,
            };
            assert!(close(a.confidence, b.confidence) && close(a.accuracy, b.accuracy));
        }
    }

    #[test]
    fn empty_and_odd_input() {
        let r = Reliability::of(&[], &[], 10);
        assert_eq!((r.n, r.ece, r.bins.len()), (0, 0.0, 10));
        assert!(r
            .bins
            .iter()
            .all(|b| b.count == 0 && b.confidence.is_none() && b.accuracy.is_none()));
        // Zero bins mean one; NaN and out-of-range probabilities are clamped.
        let r = Reliability::of(
            &[[f32::NAN; K], [2.0, 0.0, 0.0, 0.0, 0.0]],
            &[Emotion::Anger, Emotion::Anger],
            0,
        );
        assert_eq!((r.n, r.bins.len(), r.bins[0].count), (2, 1, 2));
        assert!(r.ece.is_finite());
    }
}
