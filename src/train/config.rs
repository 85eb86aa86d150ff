//! [`TrainConfig`]: everything a training run is given, its defaults and its checks, in one
//! place. `serd train` turns its flags into one; a program calls [`super::run`] with its own.

use std::path::PathBuf;

use crate::audio::decode::DecodeOptions;
use crate::backend::Backend;
use crate::conditions::Condition;
use crate::features::{FeatureSet, FrontEnd, Windowing};
use crate::folds::Grouping;
use crate::model::{CnnConfig, Layout};
use crate::train::fit::{Balance, FitConfig};
use crate::train::{Linear, Options};

/// What cross-validation holds out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CvPlan {
    /// K folds grouped as [`TrainConfig::grouping`] says.
    Speaker,
    /// Each data source's corpus in turn (needs two corpora or more).
    Corpus,
    /// Both; the corpora only when there are two or more.
    Both,
}

/// A training run: data, protocol, network and optimisation. [`TrainConfig::new`] gives serd's
/// defaults; [`TrainConfig::validate`] says which value is out of range.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Corpus folders or CSV manifests.
    pub data: Vec<PathBuf>,
    /// The model directory to write (replaced whole, at the end).
    pub out: PathBuf,
    /// Feature cache folder; `None`: [`crate::cache::Cache::default_dir`].
    pub cache: Option<PathBuf>,
    /// How the audio files are decoded (strict: a damaged or truncated file fails, and is
    /// skipped, rather than being read as far as it goes).
    pub decode: DecodeOptions,
    pub set: FeatureSet,
    pub windowing: Windowing,
    /// Windows with a smaller share of voiced frames are not used.
    pub min_voiced: f32,
    /// The front end before openSMILE; `None`: openSMILE gets the audio as it is.
    pub front: Option<FrontEnd>,
    pub folds: usize,
    pub cv: CvPlan,
    pub grouping: Grouping,
    /// The networks' optimisation (its seed seeds folds, shuffles and weights too).
    pub fit: FitConfig,
    pub layout: Layout,
    /// Filters of each convolution block.
    pub filters: usize,
    /// Convolution blocks before the output layer, 0 to 2.
    pub blocks: usize,
    /// Spatial dropout after each block while training, 0 to below 1.
    pub dropout: f64,
    /// Networks per model, probabilities averaged.
    pub members: usize,
    /// Linear members beside them ([`Linear`]) and their L2 penalty.
    pub linear: usize,
    pub linear_penalty: f64,
    /// Augmented copies of every training file, and the share of them whose voice is changed.
    pub augment: usize,
    pub voice_perturbation: f64,
    /// Conditions the cross-validated figures are also reported under.
    pub test_conditions: Vec<Condition>,
    pub backend: Backend,
    /// Train the final model on all data (false: figures only).
    pub final_model: bool,
    /// How the run was asked for, as `metrics.json` and the model card record it.
    pub command: String,
}

/// Upper limits of the counts (what `serd train` accepts).
pub const MAX_FILTERS: usize = 4096;
pub const MAX_BLOCKS: usize = 2;
pub const MAX_LINEAR: usize = 64;
pub const MAX_AUGMENT: usize = 20;

impl TrainConfig {
    /// serd's defaults for `data` into `out`: eGeMAPS in 2 s windows every 1 s, the level front
    /// end, 5 speaker-grouped folds and held-out corpora, the reference CNN, balanced class
    /// weights and label smoothing 0.1, seed 42.
    pub fn new(data: Vec<PathBuf>, out: PathBuf) -> TrainConfig {
        let network = CnnConfig::new(0);
        TrainConfig {
            data,
            out,
            cache: None,
            decode: DecodeOptions::default(),
            set: FeatureSet::Egemaps,
            windowing: Windowing::sliding(2.0, 1.0).expect("2 s windows every 1 s"),
            min_voiced: 0.1,
            front: Some(FrontEnd::DEFAULT),
            folds: 5,
            cv: CvPlan::Both,
            grouping: Grouping::Speaker,
            fit: FitConfig {
                epochs: 100,
                patience: 10,
                batch: 32,
                learning_rate: 1e-3,
                class_weights: true,
                balance: Balance::None,
                label_smoothing: 0.1,
                weight_decay: 0.0,
                early_stopping: true,
                seed: 42,
            },
            layout: network.layout,
            filters: network.filters,
            blocks: network.blocks,
            dropout: network.dropout,
            members: 1,
            linear: 0,
            linear_penalty: 0.06,
            augment: 0,
            voice_perturbation: 0.0,
            test_conditions: Vec::new(),
            backend: Backend::Auto,
            final_model: true,
            command: "serd::train::run".into(),
        }
    }

    /// The first value out of range, in the order the fields are listed here.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field, problem: String| Err(ConfigError { field, problem });
        if self.folds < 2 {
            return fail(
                Field::Folds,
                format!("must be at least 2, not {}", self.folds),
            );
        }
        for (field, value) in [
            (Field::Batch, self.fit.batch),
            (Field::Epochs, self.fit.epochs),
            (Field::Members, self.members),
        ] {
            if value == 0 {
                return fail(field, "must be at least 1".into());
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return fail(
                Field::Dropout,
                format!("must be at least 0 and below 1, not {}", self.dropout),
            );
        }
        let rate = self.fit.learning_rate;
        if !(rate.is_finite() && rate > 0.0) {
            return fail(
                Field::LearningRate,
                format!("must be a positive number, not {rate}"),
            );
        }
        if !(0.0..1.0).contains(&self.fit.label_smoothing) {
            return fail(
                Field::LabelSmoothing,
                format!(
                    "is a share from 0 up to (not including) 1, not {}",
                    self.fit.label_smoothing
                ),
            );
        }
        for (field, value) in [
            (Field::WeightDecay, self.fit.weight_decay),
            (Field::LinearPenalty, self.linear_penalty),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return fail(
                    field,
                    format!("must be 0 or a positive number, not {value}"),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.voice_perturbation) {
            return fail(
                Field::VoicePerturbation,
                format!(
                    "is a share between 0 and 1, not {}",
                    self.voice_perturbation
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.min_voiced) {
            return fail(
                Field::MinVoiced,
                format!("is a share between 0 and 1, not {}", self.min_voiced),
            );
        }
        if let Some(front) = self.front.filter(|f| f.problem().is_some()) {
            return fail(Field::Floor, floor_problem(front));
        }
        for (field, value, lo, hi) in [
            (Field::Filters, self.filters, 1, MAX_FILTERS),
            (Field::Blocks, self.blocks, 0, MAX_BLOCKS),
            (Field::Linear, self.linear, 0, MAX_LINEAR),
            (Field::Augment, self.augment, 0, MAX_AUGMENT),
        ] {
            if !(lo..=hi).contains(&value) {
                return fail(field, format!("must be {lo} to {hi}, not {value}"));
            }
        }
        Ok(())
    }

    /// The protocol's options (what the folds and the final model are trained with).
    pub(crate) fn options(&self) -> Options {
        Options {
            set: self.set,
            windowing: self.windowing,
            front: self.front,
            min_voiced: self.min_voiced,
            folds: self.folds,
            grouping: self.grouping,
            model: CnnConfig::new(self.set.dimension())
                .with_layout(self.layout)
                .with_filters(self.filters)
                .with_blocks(self.blocks)
                .with_dropout(self.dropout),
            linear: Linear::new(self.linear, self.linear_penalty, &self.fit),
            fit: self.fit.clone(),
            members: self.members,
        }
    }
}

/// The hop of `window_s`-second windows when none is asked for: half the window, in openSMILE's
/// 10 ms frames, so that every moment of speech is in two windows and `listen` reports every hop.
pub fn default_hop(window_s: f64) -> f64 {
    (window_s * 50.0).round().max(1.0) / 100.0
}

/// What is wrong with a noise floor: where it must lie.
pub fn floor_problem(front: FrontEnd) -> String {
    format!(
        "must be between -140 dBFS and the speech level ({} dBFS), not {}",
        front.level_dbfs, front.floor_dbfs
    )
}

/// A [`TrainConfig`] field out of range: which, and what is wrong with its value.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{} {problem}", field.name())]
pub struct ConfigError {
    pub field: Field,
    /// "must be at least 2, not 1".
    pub problem: String,
}

/// The fields [`TrainConfig::validate`] checks, in the order it checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Folds,
    Batch,
    Epochs,
    Members,
    Dropout,
    LearningRate,
    LabelSmoothing,
    WeightDecay,
    LinearPenalty,
    VoicePerturbation,
    MinVoiced,
    Floor,
    Filters,
    Blocks,
    Linear,
    Augment,
}

impl Field {
    /// Its name in words, as a library error says it.
    pub fn name(self) -> &'static str {
        match self {
            Field::Folds => "folds",
            Field::Batch => "batch",
            Field::Epochs => "epochs",
            Field::Members => "members",
            Field::Dropout => "dropout",
            Field::LearningRate => "learning rate",
            Field::LabelSmoothing => "label smoothing",
            Field::WeightDecay => "weight decay",
            Field::LinearPenalty => "linear penalty",
            Field::VoicePerturbation => "voice perturbation",
            Field::MinVoiced => "min voiced",
            Field::Floor => "noise floor",
            Field::Filters => "filters",
            Field::Blocks => "blocks",
            Field::Linear => "linear members",
            Field::Augment => "augment",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults pass, and each out-of-range value is named by its field.
    #[test]
    fn defaults_pass_and_each_check_names_its_field() {
        let ok = TrainConfig::new(vec!["c".into()], "m".into());
        assert_eq!(ok.validate(), Ok(()));
        let field = |change: &dyn Fn(&mut TrainConfig)| {
            let mut c = ok.clone();
            change(&mut c);
            c.validate().unwrap_err().field
        };
        assert_eq!(field(&|c| c.folds = 1), Field::Folds);
        assert_eq!(field(&|c| c.fit.batch = 0), Field::Batch);
        assert_eq!(field(&|c| c.members = 0), Field::Members);
        assert_eq!(field(&|c| c.dropout = 1.0), Field::Dropout);
        assert_eq!(
            field(&|c| c.fit.learning_rate = f64::NAN),
            Field::LearningRate
        );
        assert_eq!(
            field(&|c| c.fit.label_smoothing = 1.0),
            Field::LabelSmoothing
        );
        assert_eq!(field(&|c| c.linear_penalty = -1.0), Field::LinearPenalty);
        assert_eq!(field(&|c| c.min_voiced = 2.0), Field::MinVoiced);
        assert_eq!(
            field(&|c| c.front = Some(FrontEnd {
                floor_dbfs: -10.0,
                ..FrontEnd::DEFAULT
            })),
            Field::Floor
        );
        assert_eq!(field(&|c| c.blocks = 3), Field::Blocks);
        let e = ok.clone();
        let e = TrainConfig { folds: 1, ..e }.validate().unwrap_err();
        assert_eq!(e.to_string(), "folds must be at least 2, not 1");
    }
}
