//! Per-feature standardisation (scikit-learn's StandardScaler): `(x - mean) / std`, fitted on
//! training data only and saved in the model directory.

use serde::{Deserialize, Serialize};

/// Standardised values beyond this count as this far in [`Scaler::novelty`].
pub const NOVELTY_CLIP: f32 = 10.0;

/// Feature means and standard deviations (population, ddof = 0, as scikit-learn).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Scaler {
    /// Fits on rows of equal length. A constant feature gets std 1 (it then maps to 0), as
    /// scikit-learn does. Accumulates in f64 so long ComParE columns stay exact enough.
    pub fn fit<'a>(rows: impl IntoIterator<Item = &'a [f32]>) -> Scaler {
        let (mut n, mut sum, mut sq) = (0usize, Vec::<f64>::new(), Vec::<f64>::new());
        for row in rows {
            if sum.is_empty() {
                sum = vec![0.0; row.len()];
                sq = vec![0.0; row.len()];
            }
            for ((s, q), &x) in sum.iter_mut().zip(sq.iter_mut()).zip(row) {
                *s += f64::from(x);
                *q += f64::from(x) * f64::from(x);
            }
            n += 1;
        }
        let n = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let var = (q / n - m * m).max(0.0);
                if var.sqrt() < 1e-12 * m.abs().max(1.0) {
                    1.0
                } else {
                    var.sqrt() as f32
                }
            })
            .collect();
        Scaler {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Standardises one row in place. A value that is not finite (a feature openSMILE could not
    /// compute) becomes 0, the training mean, so one bad feature cannot make every probability NaN.
    pub fn apply(&self, row: &mut [f32]) {
        for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
            let z = (*x - m) / s;
            *x = if z.is_finite() { z } else { 0.0 };
        }
    }

    /// How far a standardised row lies from the training data: the mean over features of z²,
    /// each z clipped to ±[`NOVELTY_CLIP`] so that one wild feature cannot decide alone. About 1
    /// for rows like the training data.
    pub fn novelty(row: &[f32]) -> f32 {
        if row.is_empty() {
            return 0.0;
        }
        let sum: f64 = row
            .iter()
            .map(|z| f64::from(z.clamp(-NOVELTY_CLIP, NOVELTY_CLIP)).powi(2))
            .sum();
        (sum / row.len() as f64) as f32
    }

    /// Number of features.
    pub fn dimension(&self) -> usize {
        self.mean.len()
    }

    /// Why this scaler cannot standardise (read from a damaged `model.json`), if so.
    pub fn problem(&self) -> Option<String> {
        if self.mean.len() != self.std.len() {
            return Some(format!(
                "{} means but {} deviations",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(i) = self.mean.iter().position(|m| !m.is_finite()) {
            return Some(format!(
                "mean {} of feature {i} is not finite",
                self.mean[i]
            ));
        }
        if let Some(i) = self.std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Some(format!(
                "deviation {} of feature {i} is not a positive number",
                self.std[i]
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_is_not_finite_becomes_the_mean() {
        let scaler = Scaler {
            mean: vec![1.0, 2.0, 3.0],
            std: vec![2.0, 2.0, 2.0],
        };
        let mut row = [f32::NAN, f32::INFINITY, 5.0];
        scaler.apply(&mut row);
        assert_eq!(row, [0.0, 0.0, 1.0]);
        assert!(scaler.problem().is_none());
        let broken = Scaler {
            std: vec![2.0, 0.0, 2.0],
            ..scaler
        };
        assert!(broken.problem().unwrap().contains("feature 1"));
    }

    #[test]
    fn standardises_to_zero_mean_unit_variance() {
        let rows = [
            vec![1.0f32, 10.0, 5.0],
            vec![3.0, 30.0, 5.0],
            vec![5.0, 20.0, 5.0],
        ];
        let scaler = Scaler::fit(rows.iter().map(Vec::as_slice));
        assert_eq!(scaler.mean, vec![3.0, 20.0, 5.0]);
        // Population std of [1, 3, 5] is sqrt(8/3); the constant column gets 1.
        assert!((scaler.std[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(scaler.std[2], 1.0);
        let mut scaled: Vec<Vec<f32>> = rows.to_vec();
        scaled.iter_mut().for_each(|r| scaler.apply(r));
        for col in 0..2 {
            let mean: f32 = scaled.iter().map(|r| r[col]).sum::<f32>() / 3.0;
            let var: f32 = scaled.iter().map(|r| (r[col] - mean).powi(2)).sum::<f32>() / 3.0;
            assert!(
                mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
                "column {col}: {mean} {var}"
            );
        }
        assert!(scaled.iter().all(|r| r[2] == 0.0));
    }

    #[test]
    fn novelty_is_the_mean_square_with_each_value_clipped() {
        assert_eq!(Scaler::novelty(&[]), 0.0);
        assert_eq!(Scaler::novelty(&[1.0, -1.0, 1.0, -1.0]), 1.0);
        assert_eq!(Scaler::novelty(&[0.0, 2.0]), 2.0);
        // One wild feature counts as NOVELTY_CLIP, not as itself.
        let d = Scaler::novelty(&[1e6, 0.0, 0.0, 0.0]);
        assert_eq!(d, NOVELTY_CLIP * NOVELTY_CLIP / 4.0);
    }
}
