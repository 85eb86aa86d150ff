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
    /// scikit-learn does. Values that are not finite (a feature openSMILE could not compute) are
    /// left out of their feature's statistics, as [`Scaler::apply`] maps them to the mean; a
    /// feature with no finite value gets mean 0 and std 1. Accumulates in f64 so long ComParE
    /// columns stay exact enough.
    pub fn fit<'a>(rows: impl IntoIterator<Item = &'a [f32]>) -> Scaler {
        // Per feature: count, sum and sum of squares of its finite values.
        let mut acc: Vec<(usize, f64, f64)> = Vec::new();
        for row in rows {
            if acc.is_empty() {
                acc = vec![(0, 0.0, 0.0); row.len()];
            }
            for ((n, s, q), &x) in acc.iter_mut().zip(row).filter(|(_, x)| x.is_finite()) {
                *n += 1;
                *s += f64::from(x);
                *q += f64::from(x) * f64::from(x);
            }
        }
        let (mean, std) = acc
            .iter()
            .map(|&(n, s, q)| {
                let n = n.max(1) as f64;
                let m = s / n;
                let sd = (q / n - m * m).max(0.0).sqrt();
                let sd = if sd < 1e-12 * m.abs().max(1.0) {
                    1.0
                } else {
                    sd as f32
                };
                (m as f32, sd)
            })
            .unzip();
        Scaler { mean, std }
    }

    /// `features` standardised: the row a network reads, in training and in inference alike.
    pub fn scaled(&self, features: &[f32]) -> Vec<f32> {
        let mut row = features.to_vec();
        self.apply(&mut row);
        row
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

    /// A value openSMILE could not compute does not spoil its feature's statistics (a NaN mean
    /// would make the saved model unloadable): it is left out, and a feature with no finite value
    /// maps everything to 0.
    #[test]
    fn values_that_are_not_finite_are_left_out_of_the_fit() {
        let rows = [
            vec![1.0f32, f32::NAN, 5.0],
            vec![3.0, f32::NAN, f32::INFINITY],
            vec![f32::NAN, f32::NAN, 7.0],
        ];
        let scaler = Scaler::fit(rows.iter().map(Vec::as_slice));
        assert_eq!(scaler.mean, [2.0, 0.0, 6.0]);
        assert_eq!(scaler.std, [1.0, 1.0, 1.0]);
        assert_eq!(scaler.problem(), None);
        let mut row = [f32::NAN, 4.0, 9.0];
        scaler.apply(&mut row);
        assert_eq!(row, [0.0, 4.0, 3.0]);
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
