//! `metrics.json` of a trained model directory: one type, written by [`super::run`] and read by
//! the model card.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::corpus::SourceSummary;
use crate::features::{FeatureSet, FrontEnd};
use crate::folds::Grouping;
use crate::labels::Emotion;
use crate::metrics::{Confusion, MeanStd, Report};
use crate::model::CnnConfig;
use crate::train::fit::{FitConfig, FitLog};
use crate::train::{Assigned, CalibrationReport, CvReport, FoldReport, Linear};

/// Everything `serd train` measured, as written to `metrics.json`.
#[derive(Serialize)]
pub struct Metrics<'a> {
    pub protocol: Protocol<'a>,
    pub data: Data<'a>,
    /// Speaker-grouped K-fold cross-validation; absent when only corpora were held out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cv: Option<Cv<'a>>,
    /// Each corpus held out in turn (`folds` are the corpora, `uar` the mean over them); absent
    /// with one corpus or speaker-grouped cross-validation alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corpus_cv: Option<Cv<'a>>,
    /// The final model's fits (one per network); `None` when figures alone were asked for.
    #[serde(rename = "final")]
    pub final_fit: Option<Vec<FitLog>>,
    pub timing_s: Timing,
    pub serd_version: &'static str,
    pub command: String,
}

#[derive(Serialize)]
pub struct Protocol<'a> {
    pub folds: usize,
    pub grouping: Grouping,
    /// Whether the corpora were also held out in turn (`corpus_cv`).
    pub held_out_corpora: bool,
    pub speaker_independent: bool,
    pub validation: Validation,
    pub scaler: Scaler,
    pub features: FeatureSet,
    /// `None` for whole-file models.
    pub window_s: Option<f64>,
    pub hop_s: Option<f64>,
    pub min_voiced: f32,
    pub front_end: Option<FrontEnd>,
    /// Augmented copies per training file.
    pub augment: u16,
    /// Share of the augmented copies whose voice was changed (speed perturbation).
    pub voice_perturbation: f64,
    pub test_conditions: Vec<String>,
    pub model: &'a CnnConfig,
    pub fit: &'a FitConfig,
    /// Networks in the ensemble.
    pub members: usize,
    /// Linear members beside them; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linear: Option<&'a Linear>,
    pub backend: &'a str,
}

/// What early stopping watched; written as the sentence that says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Validation {
    #[serde(rename = "early stopping on a split of each training part, grouped like the folds")]
    EarlyStopping,
    #[serde(rename = "none: a fixed number of epochs on the whole training part")]
    FixedEpochs,
}

/// What the scaler was fitted on; written as the sentence that says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scaler {
    #[serde(rename = "fitted on each training part only")]
    TrainingPartOnly,
}

#[derive(Serialize)]
pub struct Data<'a> {
    pub sources: &'a [SourceSummary],
    pub files: usize,
    pub speakers: usize,
    pub counts: BTreeMap<Emotion, usize>,
    pub left_out: BTreeMap<String, usize>,
}

/// Cross-validated figures.
#[derive(Serialize)]
pub struct Cv<'a> {
    /// Pooled over the folds, files as units (with the files that could not be used).
    pub utterance: Report,
    pub window: Report,
    /// Per fold (per held-out corpus), mean ± std.
    pub accuracy: Option<MeanStd>,
    pub uar: Option<MeanStd>,
    pub conditions: Vec<ConditionFigures<'a>>,
    /// File-level figures within each corpus (pooled over the folds that held its files out).
    pub per_corpus: BTreeMap<&'a str, Report>,
    pub calibration: &'a CalibrationReport,
    pub folds: &'a [FoldReport],
    pub assignment: &'a [Assigned],
}

/// The held-out files under one simulated condition.
#[derive(Serialize)]
pub struct ConditionFigures<'a> {
    pub condition: &'a str,
    pub utterance: Report,
    pub window: Report,
    /// File-level UAR per fold (per held-out corpus), mean ± std.
    pub uar: Option<MeanStd>,
}

impl<'a> Cv<'a> {
    /// The figures of `cv`, its pooled file-level figures being `utterance` (which lists the
    /// files that could not be used).
    pub fn new(cv: &'a CvReport, utterance: Report) -> Cv<'a> {
        Cv {
            utterance,
            window: Report::new(cv.window),
            accuracy: cv.accuracy,
            uar: cv.uar,
            conditions: cv
                .conditions
                .iter()
                .enumerate()
                .map(|(n, c)| ConditionFigures {
                    condition: &c.condition,
                    utterance: Report::new(c.utterance),
                    window: Report::new(c.window),
                    uar: MeanStd::of(
                        &cv.folds
                            .iter()
                            .filter_map(|f| f.conditions.get(n).and_then(|c| c.uar))
                            .collect::<Vec<_>>(),
                    ),
                })
                .collect(),
            per_corpus: {
                let mut per: BTreeMap<&str, Confusion> = BTreeMap::new();
                for a in &cv.assignment {
                    if let Some(p) = a.predicted {
                        per.entry(a.corpus.as_str()).or_default().add(a.label, p);
                    }
                }
                per.into_iter().map(|(c, m)| (c, Report::new(m))).collect()
            },
            calibration: &cv.calibration,
            folds: &cv.folds,
            assignment: &cv.assignment,
        }
    }
}

#[derive(Serialize)]
pub struct Timing {
    pub features: f64,
    pub cross_validation: f64,
    #[serde(rename = "final")]
    pub final_model: f64,
    pub cache_hits: usize,
}

impl Metrics<'_> {
    /// The file's text. Through `serde_json::Value`, so that numbers are written as they always
    /// were (an `f32` as the `f64` it converts to).
    pub fn to_json(&self) -> serde_json::Result<String> {
        Ok(serde_json::to_string_pretty(&serde_json::to_value(self)?)? + "\n")
    }
}
