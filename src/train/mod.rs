//! `serd train`: corpora → features ([`crate::dataset`]: the same extraction path as `serd
//! listen`, cached, parallel; optionally augmented copies under random recording conditions) →
//! K-fold cross-validation grouped by speaker → one final model on all data → model directory.
//!
//! Protocol (the reference method with its leaks closed): the scaler is fitted on each training
//! part only; early stopping watches a validation split carved by speaker out of the training
//! part, never the test fold; the best epoch's weights are kept. Augmented copies go wherever
//! their file goes (training or validation), never into a test fold, and their babble comes from
//! their own fold's speakers. Test files are scored at window level and at utterance level,
//! clean and under each test condition; UAR comes from the confusion matrix pooled over folds. A
//! temperature fitted on the clean held-out window probabilities calibrates the final model's
//! confidence, and a file is scored as `predict` and `eval` score it: by the mean of its
//! calibrated windows' probabilities.

mod card;
pub mod config;
pub mod fit;
pub mod metrics_file;
mod protocol;

pub use config::{ConfigError, CvPlan, Field, TrainConfig};
pub use protocol::{check_out, run, OutError, Progress, Silent, Stage, TrainError, WriteError};

use std::path::PathBuf;

use burn::tensor::Device;
use serde::Serialize;

use crate::calibration::{self, Reliability};
use crate::conditions::{self, Condition};
use crate::dataset::{copy_seed, talkers, test_copies, CopyKind, Job, Labelled};
use crate::extract::Recipe;
use crate::features::{FeatureSet, FrontEnd, Window, Windowing};
use crate::folds::{self, Grouping};
use crate::inference::{argmax, mean_probs, usable, Predictor};
use crate::labels::Emotion;
use crate::metrics::{Confusion, MeanStd};
use crate::model::CnnConfig;
use crate::model_dir::{ModelInfo, FORMAT};
use crate::rng::Rng;
use crate::scaler::Scaler;
use fit::{Examples, FitConfig, FitLog};

/// Everything that shapes a training run.
#[derive(Clone, Debug)]
pub struct Options {
    pub set: FeatureSet,
    pub windowing: Windowing,
    /// The front end before openSMILE ([`FrontEnd`]); `None`: openSMILE's features as they are.
    pub front: Option<FrontEnd>,
    pub min_voiced: f32,
    pub folds: usize,
    pub grouping: Grouping,
    pub model: CnnConfig,
    pub fit: FitConfig,
    /// Networks trained per model, with seeds seed, seed + 1, ...; their probabilities averaged.
    pub members: usize,
    /// Linear members trained beside the networks, averaged with them.
    pub linear: Linear,
}

/// Linear members of an ensemble: multinomial logistic regression on the standardised features
/// (the network of [`Options::model`] with no blocks), each fitted by `fit` on every window of
/// the training part, validation split included (it has no early stopping), and averaged with the
/// networks. A model family unlike the CNN: the two err on different files (BENCHMARKS.md).
#[derive(Clone, Debug, Serialize)]
pub struct Linear {
    pub members: usize,
    pub fit: FitConfig,
}

impl Linear {
    /// Epochs of the linear recipe: enough to converge at its learning rate (BENCHMARKS.md).
    pub const EPOCHS: usize = 300;
    pub const LEARNING_RATE: f64 = 3e-3;
    /// A batch larger than any training part: every window in every step.
    pub const FULL_BATCH: usize = 1 << 24;

    /// `members` linear members with the L2 `penalty`, fitted to convergence: full batch, Adam
    /// at [`Linear::LEARNING_RATE`] for [`Linear::EPOCHS`] epochs, the last kept; class weights
    /// and label smoothing as the networks' `fit`. The seed is always the networks' (see
    /// [`train_one`]); the copy here is what `metrics.json` shows.
    pub fn new(members: usize, penalty: f64, fit: &FitConfig) -> Linear {
        Linear {
            members,
            fit: FitConfig {
                epochs: Linear::EPOCHS,
                patience: Linear::EPOCHS,
                batch: Linear::FULL_BATCH,
                learning_rate: Linear::LEARNING_RATE,
                weight_decay: penalty,
                early_stopping: false,
                ..fit.clone()
            },
        }
    }
}

/// One epoch of one member, for showing progress.
#[derive(Clone, Copy, Debug)]
pub struct Epoch {
    /// The member (0-based; the networks first, then the linear members) and how many there are.
    pub member: usize,
    pub members: usize,
    /// Whether the member is a linear model rather than a network.
    pub linear: bool,
    /// The epoch (1-based) and the most there can be.
    pub epoch: usize,
    pub epochs: usize,
    /// The validation loss, or without early stopping the training loss.
    pub loss: f64,
    pub early_stopping: bool,
}

impl Epoch {
    /// "network, epoch 12/100, validation loss 0.912".
    pub fn describe(&self) -> String {
        format!(
            "{}, epoch {}/{}, {} loss {:.3}",
            if self.linear {
                "linear model"
            } else {
                "network"
            },
            self.epoch,
            self.epochs,
            if self.early_stopping {
                "validation"
            } else {
                "training"
            },
            self.loss
        )
    }
}

/// Metrics of one fold (or held-out corpus).
#[derive(Clone, Debug, Serialize)]
pub struct FoldReport {
    pub fold: usize,
    pub test_files: usize,
    pub test_speakers: usize,
    /// The corpus this part holds out, when it is one whole corpus none of whose files trained
    /// its model; absent for speaker-grouped folds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_out: Option<String>,
    /// File level, over the classes the part has.
    pub accuracy: Option<f64>,
    pub uar: Option<f64>,
    pub window_accuracy: Option<f64>,
    pub window_uar: Option<f64>,
    /// Expected calibration error of the part's calibrated file probabilities (10 bins).
    pub ece: Option<f64>,
    /// File-level figures of the part under each test condition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<FoldCondition>,
    /// One log per network of the ensemble.
    pub fit: Vec<FitLog>,
}

/// One part's held-out files under one test condition.
#[derive(Clone, Debug, Serialize)]
pub struct FoldCondition {
    pub condition: String,
    pub accuracy: Option<f64>,
    pub uar: Option<f64>,
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
    /// The test files under each test condition (the files' held-out figures again, on
    /// conditioned copies with noise instances and rooms no training copy had).
    pub conditions: Vec<ConditionReport>,
    /// The temperature fitted on the clean held-out window probabilities, and the reliability of
    /// those probabilities before and after it.
    pub calibration: CalibrationReport,
    /// The test fold of every file, for reproducing the protocol elsewhere.
    pub assignment: Vec<Assigned>,
}

/// Held-out figures under one simulated condition.
#[derive(Clone, Debug, Serialize)]
pub struct ConditionReport {
    pub condition: String,
    pub utterance: Confusion,
    pub window: Confusion,
}

/// Confidence calibration on the cross-validated predictions.
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationReport {
    /// Of windows, and of files (applied to the mean of their calibrated windows).
    pub temperature: f32,
    pub file_temperature: f32,
    pub window_before: Reliability,
    pub window_after: Reliability,
    pub utterance_before: Reliability,
    pub utterance_after: Reliability,
}

/// A file's place in the cross-validation.
#[derive(Clone, Debug, Serialize)]
pub struct Assigned {
    pub path: PathBuf,
    pub label: Emotion,
    pub speaker: String,
    pub corpus: String,
    pub fold: usize,
    /// What the fold's model, which never saw this file's speaker (with speaker grouping),
    /// predicted for it: for error analysis and comparisons on subsets.
    pub predicted: Option<Emotion>,
}

/// The fold of every file (stratified by class, grouped as the options say).
pub fn assign_folds(files: &[Labelled], options: &Options) -> Result<Vec<usize>, folds::FoldError> {
    let labels: Vec<Emotion> = files.iter().map(|f| f.label).collect();
    let corpora: Vec<&str> = files.iter().map(|f| f.corpus.as_str()).collect();
    let speakers: Vec<&str> = files.iter().map(|f| f.speaker.as_str()).collect();
    folds::assign(
        &labels,
        &corpora,
        &speakers,
        options.grouping,
        options.folds,
        options.fit.seed,
    )
}

/// The conditioned copies a run needs: `augment` random copies of every file, with babble from
/// other speakers of the file's own fold and corpus (so neither a test fold's voices nor, when
/// corpora are held out, a held-out corpus's voices reach training data; a corpus with a single
/// speaker in a fold gets no babble there), and every file under each test condition, with
/// babble from the other folds (speakers a fold's model was trained on) and seeds no augmented
/// copy has.
pub fn plan_copies(
    files: &[Labelled],
    fold_of: &[usize],
    augment: usize,
    voice: f64,
    tests: &[Condition],
    seed: u64,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (i, file) in files.iter().enumerate() {
        for n in 0..augment {
            let copy = CopyKind::Augmented(n);
            let seed = copy_seed(seed, copy, None, &file.path);
            let mut rng = Rng::new(seed);
            let babble = talkers(
                files,
                i,
                |j| fold_of[j] == fold_of[i] && files[j].corpus == file.corpus,
                &mut rng,
            );
            let condition = conditions::draw(&mut rng, !babble.is_empty(), voice);
            jobs.push(Job {
                file: i,
                copy,
                condition,
                seed,
                babble,
            });
        }
    }
    jobs.extend(test_copies(files, tests, seed, |i, j| {
        fold_of[j] != fold_of[i]
    }));
    jobs
}

/// Cross-validation over the parts `fold_of` names (`0..parts`): speaker-grouped folds
/// ([`assign_folds`]) or held-out corpora ([`corpus_folds`]). Each part is held out in turn and
/// scored by a model trained on the others, clean and under the test conditions named in `tests`
/// (the files' `conditions`, in that order). The temperatures are fitted on the held-out windows,
/// or with `temperatures` given (a model's, fitted on other held-out data) applied as they are,
/// so that the calibration report says how well they hold there. `on_progress(part, epoch)`
/// follows the training.
pub fn cross_validate(
    files: &[Labelled],
    fold_of: &[usize],
    tests: &[Condition],
    options: &Options,
    temperatures: Option<(f32, f32)>,
    device: &Device,
    on_progress: &mut dyn FnMut(usize, Epoch),
) -> Result<CvReport, folds::FoldError> {
    let parts = fold_of.iter().max().map_or(0, |m| m + 1);
    let mut window = Confusion::new();
    let mut window_under = vec![Confusion::new(); tests.len()];
    // Each part's held-out files: index, clean window probabilities and each condition's (before
    // calibration); their files are scored once the temperature is known.
    let mut judged: Vec<Vec<HeldOutProbs>> = Vec::new();
    let mut reports = Vec::new();
    for fold in 0..parts {
        let (report, fold_judged, fold_win) = train_fold(
            files,
            fold_of,
            fold,
            options,
            device,
            &mut window_under,
            on_progress,
        )?;
        reports.push(report);
        window += fold_win;
        judged.push(fold_judged);
    }
    // Files are judged as predict and eval judge them: by the mean of their calibrated windows
    // (the file temperature that follows never changes the label).
    let held_out: Vec<(usize, [f32; Emotion::COUNT])> = judged
        .iter()
        .flatten()
        .flat_map(|j| j.clean.iter().map(move |p| (j.file, *p)))
        .collect();
    let calibration = calibrate(files, &held_out, temperatures);
    let (utterance, utterance_under, predicted) =
        score_files(files, &mut reports, &judged, &calibration, tests);
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
        .map(|((f, &fold), predicted)| Assigned {
            path: f.path.clone(),
            label: f.label,
            speaker: f.speaker.clone(),
            corpus: f.corpus.clone(),
            fold,
            predicted,
        })
        .collect();
    let conditions = tests
        .iter()
        .zip(utterance_under.into_iter().zip(window_under))
        .map(|(c, (utterance, window))| ConditionReport {
            condition: c.to_string(),
            utterance,
            window,
        })
        .collect();
    Ok(CvReport {
        folds: reports,
        utterance,
        window,
        accuracy,
        uar,
        conditions,
        calibration,
        assignment,
    })
}

/// Trains part `fold`'s model on the other parts and scores its held-out files' windows (clean,
/// and under each test condition into `window_under`): the part's report (file-level figures
/// still to come), its files' window probabilities and its window confusion.
fn train_fold(
    files: &[Labelled],
    fold_of: &[usize],
    fold: usize,
    options: &Options,
    device: &Device,
    window_under: &mut [Confusion],
    on_progress: &mut dyn FnMut(usize, Epoch),
) -> Result<(FoldReport, Vec<HeldOutProbs>, Confusion), folds::FoldError> {
    let test = select(files.iter(), fold_of, |f| f == fold);
    let rest = select(files.iter(), fold_of, |f| f != fold);
    let fold_options = Options {
        fit: FitConfig {
            seed: options.fit.seed.wrapping_add(fold as u64),
            ..options.fit.clone()
        },
        ..options.clone()
    };
    let (predictor, log) = train_one(&rest, &fold_options, device, &mut |epoch| {
        on_progress(fold, epoch)
    })?;
    // A window's label does not depend on the temperature: windows are scored now.
    let mut fold_win = Confusion::new();
    let mut fold_judged = Vec::new();
    for (i, file) in files
        .iter()
        .enumerate()
        .filter(|&(i, _)| fold_of[i] == fold)
    {
        let classify =
            |windows: &Vec<Window>| predictor.classify(&usable(windows, options.min_voiced));
        let clean = classify(&file.windows);
        for p in &clean {
            fold_win.add(file.label, argmax(p));
        }
        let conditions: Vec<_> = file.conditions.iter().map(&classify).collect();
        for (win, probs) in window_under.iter_mut().zip(&conditions) {
            for p in probs {
                win.add(file.label, argmax(p));
            }
        }
        fold_judged.push(HeldOutProbs {
            file: i,
            clean,
            conditions,
        });
    }
    let corpora = distinct(test.iter().map(|f| f.corpus.as_str()).collect());
    let report = FoldReport {
        fold,
        test_files: test.len(),
        test_speakers: distinct(test.iter().map(|f| f.speaker.as_str()).collect()).len(),
        held_out: match corpora.as_slice() {
            [one] if rest.iter().all(|f| f.corpus != *one) => Some(one.to_string()),
            _ => None,
        },
        accuracy: None,
        uar: None,
        window_accuracy: fold_win.accuracy(),
        window_uar: fold_win.uar(),
        ece: None,
        conditions: Vec::new(),
        fit: log,
    };
    Ok((report, fold_judged, fold_win))
}

/// Scores the held-out files of every part (`judged`, in the parts' order) as predict and eval
/// score them, with `calibration`'s temperatures, completing the parts' `reports`: the pooled
/// file confusion, the same under each test condition, and each file's predicted label.
fn score_files(
    files: &[Labelled],
    reports: &mut [FoldReport],
    judged: &[Vec<HeldOutProbs>],
    calibration: &CalibrationReport,
    tests: &[Condition],
) -> (Confusion, Vec<Confusion>, Vec<Option<Emotion>>) {
    let file_probs = |probs: &[[f32; Emotion::COUNT]]| {
        mean_probs(&tempered(probs, calibration.temperature))
            .map(|mean| tempered(&[mean], calibration.file_temperature)[0])
    };
    let mut utterance = Confusion::new();
    let mut utterance_under = vec![Confusion::new(); tests.len()];
    let mut predicted = vec![None; files.len()];
    for (report, fold_judged) in reports.iter_mut().zip(judged) {
        let mut fold_utt = Confusion::new();
        let mut fold_under = vec![Confusion::new(); tests.len()];
        let (mut probs, mut truth) = (Vec::new(), Vec::new());
        for j in fold_judged {
            let label = files[j.file].label;
            if let Some(p) = file_probs(&j.clean) {
                predicted[j.file] = Some(argmax(&p));
                fold_utt.add(label, argmax(&p));
                probs.push(p);
                truth.push(label);
            }
            for (utt, probs) in fold_under.iter_mut().zip(&j.conditions) {
                if let Some(p) = file_probs(probs) {
                    utt.add(label, argmax(&p));
                }
            }
        }
        report.accuracy = fold_utt.accuracy();
        report.uar = fold_utt.uar();
        report.ece = (!probs.is_empty()).then(|| Reliability::of(&probs, &truth, 10).ece);
        report.conditions = tests
            .iter()
            .zip(&fold_under)
            .map(|(c, under)| FoldCondition {
                condition: c.to_string(),
                accuracy: under.accuracy(),
                uar: under.uar(),
            })
            .collect();
        utterance += fold_utt;
        for (all, fold) in utterance_under.iter_mut().zip(fold_under) {
            *all += fold;
        }
    }
    (utterance, utterance_under, predicted)
}

/// Each file's part when every corpus is held out in turn: the index of its corpus in `corpora`,
/// the corpora in order of first appearance.
pub fn corpus_folds(files: &[Labelled]) -> (Vec<usize>, Vec<String>) {
    let mut corpora: Vec<String> = Vec::new();
    let parts = files
        .iter()
        .map(|f| match corpora.iter().position(|c| *c == f.corpus) {
            Some(i) => i,
            None => {
                corpora.push(f.corpus.clone());
                corpora.len() - 1
            }
        })
        .collect();
    (parts, corpora)
}

/// `probs`, each calibrated with temperature `t`.
fn tempered(probs: &[[f32; Emotion::COUNT]], t: f32) -> Vec<[f32; Emotion::COUNT]> {
    probs
        .iter()
        .map(|p| {
            let mut p = *p;
            calibration::apply(&mut p, t);
            p
        })
        .collect()
}

/// A held-out file's window probabilities, clean and under each test condition, before
/// calibration.
struct HeldOutProbs {
    file: usize,
    clean: Vec<[f32; Emotion::COUNT]>,
    conditions: Vec<Vec<[f32; Emotion::COUNT]>>,
}

/// Fits the temperatures on the held-out predictions and measures reliability before and after,
/// per window (what `listen` reports) and per file (the mean of its windows: what `predict` and
/// `eval` report). Windows get the temperature that minimises their mean negative
/// log-likelihood; files, the one that minimises theirs, applied to the mean of the calibrated
/// windows. (One temperature for both calibrates neither well: averaging makes a file's mean
/// less confident than its windows, and a joint fit left the windows' ECE at 0.05.)
///
/// With `fixed` temperatures (window, file) nothing is fitted: the report says how well those
/// calibrate these predictions.
fn calibrate(
    files: &[Labelled],
    held_out: &[(usize, [f32; Emotion::COUNT])],
    fixed: Option<(f32, f32)>,
) -> CalibrationReport {
    let truth: Vec<Emotion> = held_out.iter().map(|(i, _)| files[*i].label).collect();
    let raw: Vec<[f32; Emotion::COUNT]> = held_out.iter().map(|(_, p)| *p).collect();
    // Consecutive windows of the same file (held_out lists a file's windows together).
    let mut spans: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    for (k, (i, _)) in held_out.iter().enumerate() {
        match spans.last_mut() {
            Some((j, span)) if j == i => span.end = k + 1,
            _ => spans.push((*i, k..k + 1)),
        }
    }
    let file_truth: Vec<Emotion> = spans.iter().map(|(i, _)| files[*i].label).collect();
    let per_file = |probs: &[[f32; Emotion::COUNT]]| -> Vec<[f32; Emotion::COUNT]> {
        spans
            .iter()
            .filter_map(|(_, span)| mean_probs(&probs[span.clone()]))
            .collect()
    };
    let temperature = fixed
        .map(|(t, _)| t)
        .unwrap_or_else(|| calibration::fit(&raw, &truth).unwrap_or(1.0));
    let windows = tempered(&raw, temperature);
    let means = per_file(&windows);
    let file_temperature = fixed
        .map(|(_, t)| t)
        .unwrap_or_else(|| calibration::fit(&means, &file_truth).unwrap_or(1.0));
    CalibrationReport {
        temperature,
        file_temperature,
        window_before: Reliability::of(&raw, &truth, 10),
        window_after: Reliability::of(&windows, &truth, 10),
        utterance_before: Reliability::of(&per_file(&raw), &file_truth, 10),
        utterance_after: Reliability::of(&tempered(&means, file_temperature), &file_truth, 10),
    }
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

/// Trains one model (its networks and linear members) on `files`: a speaker-held-out validation
/// split for the networks' early stopping, the scaler fitted on the rest, which is what the
/// networks train on. Without early stopping nothing is held out. Linear members train on every
/// window, the validation split's too.
pub fn train_one<'a>(
    files: &[&'a Labelled],
    options: &Options,
    device: &Device,
    on_epoch: &mut dyn FnMut(Epoch),
) -> Result<(Predictor, Vec<FitLog>), folds::FoldError> {
    let (train, valid) = if options.fit.early_stopping {
        validation_split(files, options)?
    } else {
        (files.to_vec(), Vec::new())
    };

    // A file's windows and those of its augmented copies, each copy judged like a file, with
    // the file's label and its group for the loss weights (corpus or speaker).
    let labelled_windows = |files: &[&'a Labelled]| -> Vec<(&'a Window, Emotion, &'a str)> {
        files
            .iter()
            .flat_map(|f| {
                std::iter::once(&f.windows)
                    .chain(&f.augmented)
                    .flat_map(|windows| usable(windows, options.min_voiced))
                    .map(move |w| {
                        let group = match options.fit.balance {
                            fit::Balance::Speaker => f.speaker.as_str(),
                            _ => f.corpus.as_str(),
                        };
                        (w, f.label, group)
                    })
            })
            .collect()
    };
    let train_windows = labelled_windows(&train);
    let valid_windows = labelled_windows(&valid);
    let scaler = Scaler::fit(train_windows.iter().map(|(w, _, _)| w.features.as_slice()));
    let scale = |set: &[(&Window, Emotion, &str)]| -> Vec<Vec<f32>> {
        set.iter()
            .map(|(w, _, _)| scaler.scaled(&w.features))
            .collect()
    };
    let (train_rows, valid_rows) = (scale(&train_windows), scale(&valid_windows));
    let train_ex = examples(slices(&train_rows), &train_windows, &options.fit);
    let valid_ex = examples(slices(&valid_rows), &valid_windows, &options.fit);
    let every_windows: Vec<_> = train_windows
        .iter()
        .chain(&valid_windows)
        .copied()
        .collect();
    let every_rows = slices(&train_rows)
        .into_iter()
        .chain(slices(&valid_rows))
        .collect();
    let every_ex = examples(every_rows, &every_windows, &options.fit);
    let networks = options.members.max(1);
    let (models, logs) =
        train_members(options, [&train_ex, &valid_ex, &every_ex], device, on_epoch);
    let diverged = |logs: &[FitLog]| logs.iter().any(|log| log.best_epoch == 0);
    if diverged(&logs[..networks]) {
        return Err(folds::FoldError::Diverged(options.fit.learning_rate));
    }
    if diverged(&logs[networks..]) {
        return Err(folds::FoldError::LinearDiverged);
    }
    let mut info = model_info(options, scaler);
    let mut novelty: Vec<f32> = train_rows.iter().map(|r| Scaler::novelty(r)).collect();
    novelty.sort_by(f32::total_cmp);
    info.novelty = novelty
        .get(novelty.len() * 99 / 100)
        .copied()
        .filter(|d| *d > 0.0);
    Ok((Predictor::new(info, models, device.clone()), logs))
}

/// Trains every member of `options`' ensemble: the networks on `train` (early stopping on
/// `valid`), then the linear members on `every` window; each member's seed from the networks'.
fn train_members(
    options: &Options,
    [train_ex, valid_ex, every_ex]: [&Examples; 3],
    device: &Device,
    on_epoch: &mut dyn FnMut(Epoch),
) -> (Vec<crate::model::Cnn>, Vec<FitLog>) {
    let networks = options.members.max(1);
    let members = networks + options.linear.members;
    let linear_model = options.model.clone().with_blocks(0);
    let (models, logs): (Vec<_>, Vec<_>) = (0..members)
        .map(|member| {
            let (model, fit, train, valid) = if member < networks {
                (&options.model, &options.fit, train_ex, valid_ex)
            } else {
                (&linear_model, &options.linear.fit, every_ex, valid_ex)
            };
            // Every member's seed comes from the networks' (a fold's, in cross-validation).
            let config = FitConfig {
                seed: options.fit.seed.wrapping_add(1_000 * member as u64),
                ..fit.clone()
            };
            fit::fit(model, &config, train, valid, device, |epoch, loss| {
                on_epoch(Epoch {
                    member,
                    members,
                    linear: member >= networks,
                    epoch,
                    epochs: config.epochs,
                    loss,
                    early_stopping: config.early_stopping,
                })
            })
        })
        .unzip();
    (models, logs)
}

/// The distinct names among `names`, sorted.
fn distinct(mut names: Vec<&str>) -> Vec<&str> {
    names.sort_unstable();
    names.dedup();
    names
}

fn slices(rows: &[Vec<f32>]) -> Vec<&[f32]> {
    rows.iter().map(Vec::as_slice).collect()
}

/// The examples `rows` (standardised) of the windows `set` (window, label, balance group), with the loss
/// weights `fit` asks for ([`fit::weights`]).
fn examples<'r>(
    rows: Vec<&'r [f32]>,
    set: &[(&Window, Emotion, &str)],
    fit: &FitConfig,
) -> Examples<'r> {
    let labels: Vec<Emotion> = set.iter().map(|(_, l, _)| *l).collect();
    let groups: Vec<&str> = set.iter().map(|(_, _, g)| *g).collect();
    Examples {
        weights: fit::weights(
            &labels,
            &groups,
            fit.class_weights,
            fit.balance != fit::Balance::None,
        ),
        rows,
        labels,
    }
}

/// `files` split into training and validation parts, about a sixth validating (at least one
/// group of every two), grouped as the folds are.
fn validation_split<'a>(
    files: &[&'a Labelled],
    options: &Options,
) -> Result<(Vec<&'a Labelled>, Vec<&'a Labelled>), folds::FoldError> {
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
    let parts = groups.clamp(2, 6);
    let corpora: Vec<&str> = files.iter().map(|f| f.corpus.as_str()).collect();
    let split = folds::assign(
        &labels,
        &corpora,
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
    Ok((
        select(files.iter().copied(), &split, |p| p != 0),
        select(files.iter().copied(), &split, |p| p == 0),
    ))
}

impl Options {
    /// Window and hop in seconds; `None` for whole files.
    /// How audio becomes windows for this run.
    pub fn recipe(&self) -> Recipe {
        Recipe {
            set: self.set,
            windowing: self.windowing,
            front: self.front,
        }
    }
}

/// The description saved as `model.json`.
pub fn model_info(options: &Options, scaler: Scaler) -> ModelInfo {
    let (window_s, hop_s) = options.windowing.seconds();
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
        linear: options.linear.members,
        front_end: options.front,
        temperature: 1.0,
        file_temperature: 1.0,
        novelty: None,
        checksums: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(speaker: &str, n: usize) -> Labelled {
        Labelled {
            path: PathBuf::from(format!("{speaker}/{n}.wav")),
            label: Emotion::ALL[n % Emotion::COUNT],
            speaker: speaker.to_string(),
            // Two corpora: speakers a-c and d-f.
            corpus: if speaker < "d" { "x" } else { "y" }.to_string(),
            windows: Vec::new(),
            augmented: Vec::new(),
            conditions: Vec::new(),
        }
    }

    /// Babble never carries a test fold's voices, or another corpus's, into training: an
    /// augmented copy's talkers are other speakers of its own fold and corpus, a test copy's are
    /// speakers of the other folds; and augmented and test copies never share a seed.
    #[test]
    fn copies_keep_test_speakers_out_of_training_babble() {
        let speakers = ["a", "b", "c", "d", "e", "f"];
        let files: Vec<Labelled> = speakers
            .iter()
            .flat_map(|s| (0..5).map(move |n| file(s, n)))
            .collect();
        // Two speakers per fold.
        let fold_of: Vec<usize> = (0..files.len()).map(|i| i / 10).collect();
        let fold_of_path = |p: &PathBuf| fold_of[files.iter().position(|f| &f.path == p).unwrap()];
        let tests: Vec<Condition> = vec!["babble:10".parse().unwrap()];
        let jobs = plan_copies(&files, &fold_of, 8, 0.0, &tests, 42);
        assert_eq!(jobs.len(), files.len() * 9);
        let mut seeds = std::collections::HashSet::new();
        let mut babbled = 0;
        for job in &jobs {
            assert!(seeds.insert(job.seed), "a seed is reused");
            let own = &files[job.file];
            if job.condition.needs_babble() {
                babbled += 1;
                assert_eq!(job.babble.len(), crate::dataset::BABBLE_TALKERS);
            }
            for talker in &job.babble {
                assert!(!talker.starts_with(&own.speaker), "own voice in its babble");
                let same_fold = fold_of_path(talker) == fold_of[job.file];
                let talker_corpus = if talker < &PathBuf::from("d") {
                    "x"
                } else {
                    "y"
                };
                match job.copy {
                    CopyKind::Augmented(_) => {
                        assert!(same_fold, "augmented babble from another fold");
                        assert_eq!(
                            talker_corpus, own.corpus,
                            "augmented babble from another corpus"
                        );
                    }
                    CopyKind::Test(_) => assert!(!same_fold, "test babble from the test fold"),
                }
            }
        }
        assert!(babbled > files.len(), "babble drawn for augmentation too");
        // The same run plans the same copies.
        let again = plan_copies(&files, &fold_of, 8, 0.0, &tests, 42);
        assert!(jobs
            .iter()
            .zip(&again)
            .all(|(a, b)| a.seed == b.seed && a.condition == b.condition && a.babble == b.babble));
    }
}
