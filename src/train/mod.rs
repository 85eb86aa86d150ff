//! `serd train`: corpora → features (the same extraction path as `serd listen`, cached, parallel)
//! → K-fold cross-validation grouped by speaker → one final model on all data → model directory.
//!
//! Protocol (the reference method with its leaks closed): the scaler is fitted on each training
//! part only; early stopping watches a validation split carved by speaker out of the training
//! part, never the test fold; the best epoch's weights are kept. Test files are scored at
//! utterance level (mean of their windows' probabilities) and at window level; UAR comes from
//! the confusion matrix pooled over folds.

pub mod fit;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::Device;
use rayon::prelude::*;
use serde::Serialize;

use crate::cache::Cache;
use crate::corpus::Item;
use crate::features::{FeatureSet, Window, Windowing};
use crate::folds::{self, Grouping};
use crate::labels::Emotion;
use crate::metrics::{Confusion, MeanStd};
use crate::model::CnnConfig;
use crate::predict::{argmax, mean_probs, usable, ModelInfo, Predictor, FORMAT};
use crate::scaler::Scaler;
use fit::{Examples, FitConfig, FitLog};

/// The features of one labelled file.
pub struct Labelled {
    pub path: PathBuf,
    pub label: Emotion,
    pub speaker: String,
    pub windows: Vec<Window>,
}

/// A file that could not be used, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub error: String,
}

/// Everything that shapes a training run.
#[derive(Clone, Debug)]
pub struct Options {
    pub set: FeatureSet,
    pub windowing: Windowing,
    pub min_voiced: f32,
    pub folds: usize,
    pub grouping: Grouping,
    pub model: CnnConfig,
    pub fit: FitConfig,
    /// Networks trained per model, with seeds seed, seed + 1, ...; their probabilities averaged.
    pub members: usize,
}

/// Extracts (or reads from the cache) the features of every item, in parallel. Files that fail
/// are returned as skipped; the others are kept in input order.
pub fn features(
    items: &[Item],
    set: FeatureSet,
    windowing: Windowing,
    cache: &Cache,
) -> (Vec<Labelled>, Vec<Skipped>, usize) {
    let progress = bar(items.len() as u64, "features");
    let hits = AtomicUsize::new(0);
    let results: Vec<Result<Labelled, Skipped>> = items
        .par_iter()
        .map(|item| {
            let result = cache.windows(&item.path, set, windowing);
            progress.inc(1);
            match result {
                Ok((windows, hit)) if !windows.is_empty() => {
                    hits.fetch_add(usize::from(hit), Ordering::Relaxed);
                    Ok(Labelled {
                        path: item.path.clone(),
                        label: item.label,
                        speaker: item.speaker.clone(),
                        windows,
                    })
                }
                Ok(_) => Err(Skipped {
                    path: item.path.clone(),
                    error: SHORT.into(),
                }),
                Err(e) => Err(Skipped {
                    path: item.path.clone(),
                    error: e.to_string(),
                }),
            }
        })
        .collect();
    progress.finish_and_clear();
    let (mut ok, mut skipped) = (Vec::new(), Vec::new());
    let mut short = 0;
    for r in results {
        match r {
            Ok(l) => ok.push(l),
            Err(s) => {
                // Short files are expected with long windows: one summary line, details at -v.
                if s.error == SHORT {
                    short += 1;
                    log::info!("{}: {} (skipped)", s.path.display(), s.error);
                } else {
                    log::warn!("{}: {} (skipped)", s.path.display(), s.error);
                }
                skipped.push(s);
            }
        }
    }
    if short > 0 {
        log::warn!("{short} files are shorter than one window and were left out (-v lists them)");
    }
    (ok, skipped, hits.into_inner())
}

const SHORT: &str = "shorter than one window";

/// The files a run could not use, for reports: the data sources' problems, then the files whose
/// features failed.
pub fn skipped_report(
    dataset: &crate::corpus::Dataset,
    skipped: &[Skipped],
) -> Vec<crate::metrics::Skipped> {
    let entry = |path: &std::path::Path, error: &str| crate::metrics::Skipped {
        path: path.display().to_string(),
        error: error.to_string(),
    };
    dataset
        .problems()
        .map(|p| entry(&p.path, &p.error))
        .chain(skipped.iter().map(|s| entry(&s.path, &s.error)))
        .collect()
}

/// Metrics of one fold.
#[derive(Clone, Debug, Serialize)]
pub struct FoldReport {
    pub fold: usize,
    pub test_files: usize,
    pub test_speakers: usize,
    pub accuracy: Option<f64>,
    pub uar: Option<f64>,
    pub window_accuracy: Option<f64>,
    pub window_uar: Option<f64>,
    /// One log per network of the ensemble.
    pub fit: Vec<FitLog>,
}

/// Cross-validation results.
#[derive(Debug, Serialize)]
pub struct CvReport {
    pub folds: Vec<FoldReport>,
    /// Utterance level, pooled over folds.
    pub utterance: Confusion,
    /// Window level, pooled over folds.
    pub window: Confusion,
    /// Utterance-level accuracy and UAR over folds.
    pub accuracy: Option<MeanStd>,
    pub uar: Option<MeanStd>,
    /// The test fold of every file, for reproducing the protocol elsewhere.
    pub assignment: Vec<Assigned>,
}

/// A file's place in the cross-validation.
#[derive(Clone, Debug, Serialize)]
pub struct Assigned {
    pub path: PathBuf,
    pub label: Emotion,
    pub speaker: String,
    pub fold: usize,
    /// What the fold's model, which never saw this file's speaker (with speaker grouping),
    /// predicted for it: for error analysis and comparisons on subsets.
    pub predicted: Option<Emotion>,
}

/// K-fold cross-validation. `on_progress(fold, epoch, valid_loss)` follows the training.
pub fn cross_validate(
    files: &[Labelled],
    options: &Options,
    device: &Device,
    on_progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<CvReport, folds::FoldError> {
    let labels: Vec<Emotion> = files.iter().map(|f| f.label).collect();
    let speakers: Vec<&str> = files.iter().map(|f| f.speaker.as_str()).collect();
    let fold_of = folds::assign(
        &labels,
        &speakers,
        options.grouping,
        options.folds,
        options.fit.seed,
    )?;
    let (mut utterance, mut window) = (Confusion::new(), Confusion::new());
    let mut reports = Vec::new();
    let mut predicted = vec![None; files.len()];
    for fold in 0..options.folds {
        let test = select(files.iter(), &fold_of, |f| f == fold);
        let rest = select(files.iter(), &fold_of, |f| f != fold);
        let fold_options = Options {
            fit: FitConfig {
                seed: options.fit.seed.wrapping_add(fold as u64),
                ..options.fit.clone()
            },
            ..options.clone()
        };
        let (predictor, log) = train_one(&rest, &fold_options, device, &mut |epoch, loss| {
            on_progress(fold, epoch, loss)
        })?;
        let (mut fold_utt, mut fold_win) = (Confusion::new(), Confusion::new());
        for (i, file) in files
            .iter()
            .enumerate()
            .filter(|&(i, _)| fold_of[i] == fold)
        {
            let windows = usable(&file.windows, options.min_voiced);
            let probs = predictor.classify(&windows);
            for p in &probs {
                fold_win.add(file.label, argmax(p));
            }
            if let Some(mean) = mean_probs(&probs) {
                predicted[i] = Some(argmax(&mean));
                fold_utt.add(file.label, argmax(&mean));
            }
        }
        let mut test_speakers: Vec<&str> = test.iter().map(|f| f.speaker.as_str()).collect();
        test_speakers.sort_unstable();
        test_speakers.dedup();
        reports.push(FoldReport {
            fold,
            test_files: test.len(),
            test_speakers: test_speakers.len(),
            accuracy: fold_utt.accuracy(),
            uar: fold_utt.uar(),
            window_accuracy: fold_win.accuracy(),
            window_uar: fold_win.uar(),
            fit: log,
        });
        utterance += fold_utt;
        window += fold_win;
    }
    let accuracy = MeanStd::of(
        &reports
            .iter()
            .filter_map(|r| r.accuracy)
            .collect::<Vec<_>>(),
    );
    let uar = MeanStd::of(&reports.iter().filter_map(|r| r.uar).collect::<Vec<_>>());
    let assignment = files
        .iter()
        .zip(fold_of)
        .zip(predicted)
        .map(|((f, fold), predicted)| Assigned {
            path: f.path.clone(),
            label: f.label,
            speaker: f.speaker.clone(),
            fold,
            predicted,
        })
        .collect();
    Ok(CvReport {
        folds: reports,
        utterance,
        window,
        accuracy,
        uar,
        assignment,
    })
}

/// The items whose part number satisfies `keep`.
fn select<'a, T>(
    items: impl Iterator<Item = &'a T>,
    parts: &[usize],
    keep: impl Fn(usize) -> bool,
) -> Vec<&'a T> {
    items
        .zip(parts)
        .filter(|(_, &p)| keep(p))
        .map(|(item, _)| item)
        .collect()
}

/// Trains one network on `files`: a speaker-held-out validation split for early stopping, the
/// scaler fitted on the rest, which is what the network trains on.
pub fn train_one<'a>(
    files: &[&'a Labelled],
    options: &Options,
    device: &Device,
    on_epoch: &mut dyn FnMut(usize, f64),
) -> Result<(Predictor, Vec<FitLog>), folds::FoldError> {
    let labels: Vec<Emotion> = files.iter().map(|f| f.label).collect();
    let speakers: Vec<&str> = files.iter().map(|f| f.speaker.as_str()).collect();
    let groups = match options.grouping {
        Grouping::Speaker => {
            let mut s = speakers.clone();
            s.sort_unstable();
            s.dedup();
            s.len()
        }
        Grouping::None => files.len(),
    };
    // About a sixth of the training part validates (at least one group of every two).
    let parts = groups.clamp(2, 6);
    let split = folds::assign(
        &labels,
        &speakers,
        options.grouping,
        parts,
        options.fit.seed ^ 0x5EED,
    )
    // It fails only when there is a single group to split.
    .map_err(|_| folds::FoldError::NoValidation {
        unit: match options.grouping {
            Grouping::Speaker => "speaker",
            Grouping::None => "file",
        },
    })?;
    let train = select(files.iter().copied(), &split, |p| p != 0);
    let valid = select(files.iter().copied(), &split, |p| p == 0);

    let labelled_windows = |files: &[&'a Labelled]| -> Vec<(&'a Window, Emotion)> {
        files
            .iter()
            .flat_map(|f| {
                usable(&f.windows, options.min_voiced)
                    .into_iter()
                    .map(move |w| (w, f.label))
            })
            .collect()
    };
    let train_windows = labelled_windows(&train);
    let valid_windows = labelled_windows(&valid);
    let scaler = Scaler::fit(train_windows.iter().map(|(w, _)| w.features.as_slice()));
    let scale = |set: &[(&Window, Emotion)]| -> (Vec<Vec<f32>>, Vec<Emotion>) {
        set.iter()
            .map(|(w, l)| {
                let mut row = w.features.clone();
                scaler.apply(&mut row);
                (row, *l)
            })
            .unzip()
    };
    let (train_rows, train_labels) = scale(&train_windows);
    let (valid_rows, valid_labels) = scale(&valid_windows);
    let train_ex = Examples {
        rows: train_rows.iter().map(Vec::as_slice).collect(),
        labels: train_labels,
    };
    let valid_ex = Examples {
        rows: valid_rows.iter().map(Vec::as_slice).collect(),
        labels: valid_labels,
    };
    let (models, logs): (Vec<_>, Vec<_>) = (0..options.members.max(1))
        .map(|member| {
            let config = FitConfig {
                seed: options.fit.seed.wrapping_add(1_000 * member as u64),
                ..options.fit.clone()
            };
            fit::fit(
                &options.model,
                &config,
                &train_ex,
                &valid_ex,
                device,
                &mut *on_epoch,
            )
        })
        .unzip();
    if logs.iter().any(|log: &FitLog| log.best_epoch == 0) {
        return Err(folds::FoldError::Diverged(options.fit.learning_rate));
    }
    let info = model_info(options, scaler);
    Ok((Predictor::new(info, models, device.clone()), logs))
}

impl Options {
    /// Window and hop in seconds; `None` for whole files.
    pub fn windowing_seconds(&self) -> (Option<f64>, Option<f64>) {
        match self.windowing {
            Windowing::Whole => (None, None),
            Windowing::Sliding { window, hop } => (Some(window), Some(hop)),
        }
    }
}

/// The description saved as `model.json`.
pub fn model_info(options: &Options, scaler: Scaler) -> ModelInfo {
    let (window_s, hop_s) = options.windowing_seconds();
    ModelInfo {
        format: FORMAT,
        serd_version: env!("CARGO_PKG_VERSION").to_string(),
        labels: Emotion::ALL.to_vec(),
        features: options.set,
        window_s,
        hop_s,
        min_voiced: options.min_voiced,
        scaler,
        model: options.model.clone(),
        members: options.members.max(1),
    }
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}}/{{len}} [{{bar:30}}] {{elapsed}} (eta {{eta}}) {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}
