//! `metrics.json` of a trained model directory: one type, written by `serd train` and read by
//! the model card.

use std::collections::BTreeMap;

use serde::Serialize;

use serd::corpus::SourceSummary;
use serd::features::{FeatureSet, FrontEnd};
use serd::folds::Grouping;
use serd::labels::Emotion;
use serd::metrics::{MeanStd, Report};
use serd::model::CnnConfig;
use serd::train::fit::{FitConfig, FitLog};
use serd::train::{Assigned, CalibrationReport, FoldReport, Linear};

/// Everything `serd train` measured, as written to `metrics.json`.
#[derive(Serialize)]
pub struct Metrics<'a> {
    pub protocol: Protocol<'a>,
    pub data: Data<'a>,
    pub cv: Cv<'a>,
    /// The final model's fits (one per network); `None` with `--no-final`.
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
    pub speaker_independent: bool,
    pub validation: &'static str,
    pub scaler: &'static str,
    pub features: FeatureSet,
    /// `None` for whole-file models.
    pub window_s: Option<f64>,
    pub hop_s: Option<f64>,
    pub min_voiced: f32,
    pub front_end: Option<FrontEnd>,
    /// Augmented copies per training file.
    pub augment: u16,
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
    pub utterance: &'a Report,
    pub window: Report,
    /// Per fold, mean ± std.
    pub accuracy: Option<MeanStd>,
    pub uar: Option<MeanStd>,
    pub conditions: Vec<ConditionFigures<'a>>,
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
