//! Cross-validation folds: stratified by class and grouped by speaker, so that no speaker is in
//! both the training and the test part (the honest, speaker-independent protocol), or stratified
//! by utterance only (`Grouping::None`, the reference's protocol, which leaks speakers).
//!
//! Assignment is greedy and deterministic for a seed: groups are taken largest first (ties in a
//! seeded random order) and each goes to the fold where it keeps the per-class shares most even,
//! which is scikit-learn's StratifiedGroupKFold criterion.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::labels::Emotion;
pub use crate::rng::Rng;

/// How items are kept together across folds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// A speaker's files are all in one fold.
    Speaker,
    /// Each file on its own: speakers appear in training and test (optimistic figures).
    None,
}

impl crate::choice::Choice for Grouping {
    const ALL: &'static [(Grouping, &'static str, &'static str)] = &[
        (
            Grouping::Speaker,
            "speaker",
            "A speaker's files are all in one fold",
        ),
        (
            Grouping::None,
            "none",
            "Each file on its own: speakers appear in training and test (optimistic figures)",
        ),
    ];
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FoldError {
    #[error("{folds}-fold cross-validation needs at least {folds} files, there are {items}")]
    TooFewItems { folds: usize, items: usize },
    #[error(
        "{folds}-fold cross-validation grouped by speaker needs at least {folds} speakers, there \
         {}",
        if *.speakers == 1 { "is 1".to_string() } else { format!("are {}", .speakers) }
    )]
    TooFewSpeakers { folds: usize, speakers: usize },
    #[error("at least 2 folds are needed, not {0}")]
    FoldCount(usize),
    /// A training part too small to hold out a validation split for early stopping.
    #[error(
        "a fold's training part has only one {unit}, and early stopping needs at least 2 to hold \
         one out for validation"
    )]
    NoValidation { unit: &'static str },
    /// Training a fold's network gave no finite validation loss in any epoch.
    #[error("training diverged: no epoch gave a finite validation loss at learning rate {0:?}")]
    Diverged(f64),
    /// A linear member's training ended with a non-finite training loss.
    #[error("training a linear member diverged (non-finite training loss)")]
    LinearDiverged,
}

/// Assigns every item a fold in `0..k`. `labels[i]`, `corpora[i]` and `groups[i]` describe item
/// `i`. Folds are stratified by class within each corpus, so that every fold holds its share of
/// every corpus: a corpus of few, large speakers (TESS: two speakers of 500 files) then takes a
/// fold's share of that corpus, not the whole fold.
pub fn assign(
    labels: &[Emotion],
    corpora: &[&str],
    groups: &[&str],
    grouping: Grouping,
    k: usize,
    seed: u64,
) -> Result<Vec<usize>, FoldError> {
    if k < 2 {
        return Err(FoldError::FoldCount(k));
    }
    if labels.len() < k {
        return Err(FoldError::TooFewItems {
            folds: k,
            items: labels.len(),
        });
    }
    // Group id per item: the speaker, or the item itself.
    let keys: Vec<String> = match grouping {
        Grouping::Speaker => groups.iter().map(|g| g.to_string()).collect(),
        Grouping::None => (0..labels.len()).map(|i| i.to_string()).collect(),
    };
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        members.entry(key.as_str()).or_default().push(i);
    }
    if members.len() < k {
        return Err(FoldError::TooFewSpeakers {
            folds: k,
            speakers: members.len(),
        });
    }
    // Strata: (corpus, class) pairs, numbered in order of first appearance.
    let mut names: Vec<(&str, Emotion)> = Vec::new();
    let stratum: Vec<usize> = labels
        .iter()
        .zip(corpora)
        .map(|(&l, &c)| match names.iter().position(|&n| n == (c, l)) {
            Some(s) => s,
            None => {
                names.push((c, l));
                names.len() - 1
            }
        })
        .collect();
    let mut class_totals = vec![0usize; names.len()];
    stratum.iter().for_each(|&s| class_totals[s] += 1);

    let mut order: Vec<(&str, Vec<usize>)> = members.into_iter().collect();
    Rng::new(seed).shuffle(&mut order);
    // Largest groups first (stable: ties keep the shuffled order).
    order.sort_by_key(|(_, items)| std::cmp::Reverse(items.len()));

    let mut fold_counts = vec![vec![0usize; names.len()]; k];
    let mut fold_sizes = vec![0usize; k];
    let mut fold_of = vec![0usize; labels.len()];
    for (_, items) in &order {
        let mut counts = vec![0usize; names.len()];
        items.iter().for_each(|&i| counts[stratum[i]] += 1);
        let best = (0..k)
            .min_by(|&a, &b| {
                let (ca, cb) = (
                    imbalance(&fold_counts, a, &counts, &class_totals),
                    imbalance(&fold_counts, b, &counts, &class_totals),
                );
                ca.total_cmp(&cb)
                    .then(fold_sizes[a].cmp(&fold_sizes[b]))
                    .then(a.cmp(&b))
            })
            .expect("k >= 2");
        for (total, add) in fold_counts[best].iter_mut().zip(&counts) {
            *total += add;
        }
        fold_sizes[best] += items.len();
        items.iter().for_each(|&i| fold_of[i] = best);
    }
    Ok(fold_of)
}

/// Sum over strata of the variance across folds of each fold's share of the stratum, if the
/// group went to `fold`.
fn imbalance(fold_counts: &[Vec<usize>], fold: usize, add: &[usize], totals: &[usize]) -> f64 {
    let k = fold_counts.len() as f64;
    let mut sum = 0.0;
    for c in 0..totals.len() {
        if totals[c] == 0 {
            continue;
        }
        let shares: Vec<f64> = (0..fold_counts.len())
            .map(|f| {
                (fold_counts[f][c] + if f == fold { add[c] } else { 0 }) as f64 / totals[c] as f64
            })
            .collect();
        let mean = shares.iter().sum::<f64>() / k;
        sum += shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / k;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn corpus(speakers: usize, per_class: usize) -> (Vec<Emotion>, Vec<String>) {
        let mut labels = Vec::new();
        let mut groups = Vec::new();
        for s in 0..speakers {
            for e in Emotion::ALL {
                for _ in 0..per_class {
                    labels.push(e);
                    groups.push(format!("spk{s}"));
                }
            }
        }
        (labels, groups)
    }

    #[test]
    fn speakers_never_cross_folds_and_classes_stay_balanced() {
        let (labels, groups) = corpus(12, 4);
        let g: Vec<&str> = groups.iter().map(String::as_str).collect();
        let one = vec!["c"; labels.len()];
        let folds = assign(&labels, &one, &g, Grouping::Speaker, 5, 7).unwrap();
        let mut fold_of_speaker: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
        for (i, f) in folds.iter().enumerate() {
            fold_of_speaker.entry(g[i]).or_default().insert(*f);
        }
        assert!(
            fold_of_speaker.values().all(|f| f.len() == 1),
            "a speaker in two folds"
        );
        let sizes: Vec<usize> = (0..5)
            .map(|f| folds.iter().filter(|&&x| x == f).count())
            .collect();
        // 12 speakers of 20 files into 5 folds: 2 or 3 speakers each.
        assert!(sizes.iter().all(|&s| s == 40 || s == 60), "{sizes:?}");
        assert_eq!(
            folds,
            assign(&labels, &one, &g, Grouping::Speaker, 5, 7).unwrap(),
            "deterministic for a seed"
        );
    }

    /// A corpus of two large speakers beside one of many small ones: each fold holds its share
    /// of the many (not two folds of one large speaker each and the many squeezed into three).
    #[test]
    fn folds_hold_a_share_of_every_corpus() {
        let (mut labels, mut groups) = corpus(20, 2);
        let mut corpora = vec!["many"; labels.len()];
        for big in ["big0", "big1"] {
            for e in Emotion::ALL {
                for _ in 0..50 {
                    labels.push(e);
                    groups.push(big.to_string());
                    corpora.push("two");
                }
            }
        }
        let g: Vec<&str> = groups.iter().map(String::as_str).collect();
        let folds = assign(&labels, &corpora, &g, Grouping::Speaker, 5, 3).unwrap();
        for f in 0..5 {
            let speakers: BTreeSet<&str> = (0..labels.len())
                .filter(|&i| folds[i] == f && corpora[i] == "many")
                .map(|i| g[i])
                .collect();
            assert_eq!(speakers.len(), 4, "fold {f}: {speakers:?}");
        }
    }

    #[test]
    fn ungrouped_folds_stratify_by_class() {
        let (labels, groups) = corpus(1, 10);
        let g: Vec<&str> = groups.iter().map(String::as_str).collect();
        let one = vec!["c"; labels.len()];
        let folds = assign(&labels, &one, &g, Grouping::None, 5, 1).unwrap();
        for f in 0..5 {
            for e in Emotion::ALL {
                let n = (0..labels.len())
                    .filter(|&i| folds[i] == f && labels[i] == e)
                    .count();
                assert_eq!(n, 2, "fold {f}, {e}");
            }
        }
    }

    #[test]
    fn impossible_fold_requests_are_clear_errors() {
        let (labels, groups) = corpus(1, 2);
        let g: Vec<&str> = groups.iter().map(String::as_str).collect();
        let one = vec!["c"; labels.len()];
        let err = assign(&labels, &one, &g, Grouping::Speaker, 5, 0).unwrap_err();
        assert_eq!(
            err,
            FoldError::TooFewSpeakers {
                folds: 5,
                speakers: 1
            }
        );
        // The value, not a flag: the command line adds its flags.
        assert_eq!(
            err.to_string(),
            "5-fold cross-validation grouped by speaker needs at least 5 speakers, there is 1"
        );
        assert_eq!(
            assign(&labels[..3], &one[..3], &g[..3], Grouping::None, 5, 0).unwrap_err(),
            FoldError::TooFewItems { folds: 5, items: 3 }
        );
        assert_eq!(
            assign(&labels, &one, &g, Grouping::None, 1, 0).unwrap_err(),
            FoldError::FoldCount(1)
        );
    }
}
