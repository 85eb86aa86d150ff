//! `serd train`: its flags become a [`TrainConfig`] for [`serd::train::run`], which writes the model
//! directory; the figures are printed as they come, the file-level report on stdout at the end.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;

use serd::backend::Backend;
use serd::conditions::Condition;
use serd::dataset;
use serd::features::{FeatureSet, FrontEnd};
use serd::folds::{FoldError, Grouping};
use serd::model::Layout;
use serd::train::config::{default_hop, Field};
use serd::train::fit::Balance;
use serd::train::{self, CvPlan, CvReport, Epoch, OutError, Stage, TrainConfig, TrainError};

use super::usage;
use super::{windowing, WindowArg};

/// Train an emotion model on labelled speech, with cross-validated figures.
///
/// Data sources are corpus folders recognised by their layout and file names (RAVDESS, TESS,
/// EmoDB, CREMA-D, ShEMO, ESD, SAVEE) or CSV manifests with a `path,label[,speaker]` header.
/// Features come from the same extraction path as `serd extract`, cached between runs.
///
/// Protocol: K-fold cross-validation stratified by class and grouped by speaker; in each fold the
/// scaler is fitted on the training part and early stopping watches a validation split carved by
/// speaker out of the training part (or, with --no-early-stopping, every epoch runs on the whole
/// training part). Then one final model is trained on all data the same way and written to --out
/// with its metrics.
#[derive(Args)]
pub struct TrainArgs {
    /// A corpus folder or CSV manifest (repeat for several).
    #[arg(long = "data", required = true, value_name = "SRC")]
    data: Vec<PathBuf>,
    /// Model directory to write.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Feature set.
    #[arg(long = "features", value_parser = super::choice::<FeatureSet>(), default_value = "egemaps")]
    set: FeatureSet,
    /// Window length in seconds, or "whole" for one vector per file. A whole-file model serves
    /// predict and eval; listen needs a model of windows, as the default (the bundled recipe's) is.
    #[arg(long, default_value = "2", value_parser = super::parse_window, allow_negative_numbers = true)]
    window: WindowArg,
    /// Hop between windows in seconds (default: half the window, in openSMILE's 10 ms frames).
    #[arg(long, allow_negative_numbers = true)]
    hop: Option<f64>,
    /// Windows with a smaller share of voiced frames are not used (nor classified later).
    #[arg(long, allow_negative_numbers = true, default_value_t = d().min_voiced)]
    min_voiced: f32,
    /// Cross-validation folds.
    #[arg(long, default_value_t = d().folds)]
    folds: usize,
    /// What cross-validation holds out: "speaker" (K folds grouped by speaker, --folds and
    /// --grouping), "corpus" (each data source's corpus in turn, the model trained on the others
    /// and scored on the classes the held-out corpus has: what a voice, language and recording
    /// the model never met costs), or both (the default; "corpus" needs two corpora or more and
    /// is left out, with a notice, when there is one). The final model's temperatures are fitted
    /// on the speaker-grouped predictions when those are made.
    #[arg(long, value_enum, default_value_t = CvArg::Both)]
    cv: CvArg,
    /// Keep each speaker in one fold, or not (then figures are optimistic: speakers leak).
    #[arg(long, value_parser = super::choice::<Grouping>(), default_value = "speaker")]
    grouping: Grouping,
    /// Maximum epochs.
    #[arg(long, default_value_t = d().fit.epochs)]
    epochs: usize,
    /// Epochs without improvement of the validation loss before stopping.
    #[arg(long, default_value_t = d().fit.patience)]
    patience: usize,
    /// Examples per optimisation step.
    #[arg(long, default_value_t = d().fit.batch)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, allow_negative_numbers = true, default_value_t = d().fit.learning_rate)]
    learning_rate: f64,
    /// Loss weights per class: "balanced" (inverse class frequency) or "none".
    #[arg(long, value_enum, default_value_t = ClassWeights::Balanced)]
    class_weights: ClassWeights,
    /// Label smoothing of the training loss, from 0 (none) to below 1: the target keeps 1 - A on
    /// the labelled class and spreads A over all five. Early stopping watches the plain loss.
    /// 0.1 raised single-network UAR by about 0.01 here (BENCHMARKS.md).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "A",
        default_value_t = d().fit.label_smoothing
    )]
    label_smoothing: f64,
    /// L2 penalty on the network's weights (Adam's coupled weight decay), 0 for none. A penalty
    /// of λ on the mean loss is scikit-learn's LogisticRegression with C = 1 / (λ × examples).
    #[arg(
        long,
        value_name = "L",
        allow_negative_numbers = true,
        default_value_t = d().fit.weight_decay
    )]
    weight_decay: f64,
    /// Train every one of --epochs on the whole training part and keep the last epoch, instead
    /// of holding out a validation split for early stopping (--patience is then unused). Meant
    /// for the linear model (--blocks 0) with --weight-decay: its target is the penalised
    /// optimum, which early stopping on the validation loss stops short of.
    #[arg(long)]
    no_early_stopping: bool,
    /// How the feature vector enters the network: "channels" (the reference's literal layout,
    /// the default: best figures here, and about 10x faster) or "sequence".
    #[arg(long, value_parser = super::choice::<Layout>(), default_value = "channels")]
    layout: Layout,
    /// Filters of each of the network's convolution blocks (its width).
    #[arg(long, value_name = "N", default_value_t = d().filters as u16,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    filters: u16,
    /// Convolution blocks before the output layer: 2 (the reference's CNN), 1, or 0 (the output
    /// layer alone: a linear model of the standardised features, multinomial logistic regression).
    #[arg(long, value_name = "N", default_value_t = d().blocks as u8,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    blocks: u8,
    /// Probability of dropping a whole channel after each block while training, 0 to below 1.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "P",
        default_value_t = d().dropout
    )]
    dropout: f64,
    /// Seed of folds, shuffles and initial weights (runs are reproducible on the CPU backend).
    #[arg(long, default_value_t = d().fit.seed)]
    seed: u64,
    /// Feature cache folder (default: ~/.cache/serd/features).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Networks per model (different seeds), probabilities averaged.
    #[arg(long, default_value_t = d().members)]
    ensemble: usize,
    /// Linear members added to the ensemble: multinomial logistic regressions on the same
    /// standardised features, each fitted to its L2-penalised optimum on the whole training part
    /// (300 epochs of full-batch Adam at 0.003, the last kept; no early stopping), their
    /// probabilities averaged with the networks'. A model family that errs on other files than
    /// the CNN: one of each beat two CNNs here (BENCHMARKS.md, "A linear member").
    #[arg(long, value_name = "N", default_value_t = d().linear as u8,
          value_parser = clap::value_parser!(u8).range(0..=64))]
    linear: u8,
    /// L2 penalty of the linear members (on the mean loss; scikit-learn's C = 1 / (L × examples)).
    #[arg(
        long,
        value_name = "L",
        allow_negative_numbers = true,
        default_value_t = d().linear_penalty
    )]
    linear_penalty: f64,
    /// Where the network trains: a GPU through wgpu when there is one (auto), wgpu, or the CPU.
    /// Runs are reproducible on the CPU backend.
    #[arg(long, value_parser = super::choice::<Backend>(), default_value = "auto")]
    backend: Backend,
    /// Only cross-validate: write metrics, no final model.
    #[arg(long)]
    no_final: bool,
    /// Augmented copies of every training file, each under a random recording condition (gain,
    /// noise or babble at 0–30 dB SNR, a room, a telephone channel, a noise floor, 44.1/48 kHz
    /// rendering; seeded, babble only from other training speakers). Features of each copy are
    /// cached. 0 (default): train on the recordings as they are; at most 20.
    #[arg(long, value_name = "N", default_value_t = d().augment as u16,
          value_parser = clap::value_parser!(u16).range(0..=20))]
    augment: u16,
    /// Share of the augmented copies whose voice is changed: played 0.9 to 1.1 times as fast
    /// (tempo, pitch and formants alike: speed perturbation), so the model meets more voices than
    /// the corpora's speakers. 0 changes no voice.
    #[arg(
        long,
        value_name = "P",
        allow_negative_numbers = true,
        default_value_t = d().voice_perturbation
    )]
    voice_perturbation: f64,
    /// Weigh the loss so that every corpus ("corpus") or every speaker ("speaker") counts the
    /// same, whatever its size, with --class-weights balanced applied within each; or by class
    /// alone ("none"). A corpus of a thousand single words from two voices otherwise pulls the
    /// model towards them.
    #[arg(long, value_parser = super::choice::<Balance>(), default_value = "none")]
    balance: Balance,
    /// Also report the cross-validated figures with the test files under this simulated condition
    /// (repeatable; "standard" for white:10 babble:10 reverb:0.6 telephone gain:-30 rate:48000).
    /// Test copies get noise instances and rooms no training copy had; see `serd eval --help` for
    /// the SPEC syntax.
    #[arg(long = "test-condition", value_name = "SPEC")]
    test_conditions: Vec<String>,
    /// What is done to the audio before openSMILE: "level" normalises the speech level (a slow,
    /// causal gain control) and adds a quiet noise floor, so that the verdict does not depend on
    /// the microphone's gain or a recording's digital silence; "none" gives openSMILE the audio as
    /// it is. Recorded in the model: eval, predict and listen do the same.
    #[arg(long, value_enum, default_value_t = FrontEndArg::Level)]
    front_end: FrontEndArg,
    /// With `--front-end level`: the RMS of the noise floor added after normalisation, dBFS
    /// (speech is brought to -20 dBFS).
    #[arg(long, value_name = "DBFS", default_value_t = FrontEnd::DEFAULT.floor_dbfs, allow_hyphen_values = true)]
    floor: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CvArg {
    Speaker,
    Corpus,
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FrontEndArg {
    Level,
    None,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ClassWeights {
    Balanced,
    None,
}

/// The library's defaults, which the flags' defaults are.
fn d() -> TrainConfig {
    TrainConfig::new(Vec::new(), PathBuf::new())
}

pub fn run(args: TrainArgs, strict: bool) -> anyhow::Result<()> {
    train::check_out(&args.out, !args.no_final).map_err(out_error)?;
    // A folder the new model cannot be written beside fails now, not after the training.
    serd::files::check_writable_parent(&args.out)?;
    let mut config = config(&args)?;
    if matches!(args.window, WindowArg::Whole) {
        log::warn!(
            "--window whole: the model will classify whole files (predict, eval); listen needs \
             a model of windows (--window SECONDS)"
        );
    }
    config.test_conditions = super::conditions(&args.test_conditions, "--test-condition")?;
    config.decode = super::decode_options(strict);
    // As a user would type it again: the program as `serd`, wherever this binary lives.
    config.command = std::iter::once("serd".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let mut progress = Bars {
        bar: None,
        stage: Stage::SpeakerCv,
        config: &config,
    };
    let report = train::run(&config, &mut progress).map_err(train_error)?;
    super::print_json(&report)?;
    log::info!("wrote {}", args.out.display());
    Ok(())
}

/// The training run the flags ask for, every value checked (an error names its flag).
fn config(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let hop = args.hop.or(match args.window {
        WindowArg::Seconds(w) => Some(default_hop(w)),
        WindowArg::Whole => None,
    });
    let windowing = windowing(args.window, hop);
    let front = FrontEnd {
        floor_dbfs: args.floor,
        ..FrontEnd::DEFAULT
    };
    let defaults = d();
    let mut config = TrainConfig {
        data: args.data.clone(),
        out: args.out.clone(),
        cache: args.cache.clone(),
        decode: defaults.decode,
        set: args.set,
        windowing: windowing.as_ref().map_or(defaults.windowing, |w| *w),
        min_voiced: args.min_voiced,
        // The floor is checked whichever front end is asked for.
        front: Some(front),
        folds: args.folds,
        cv: match args.cv {
            CvArg::Speaker => CvPlan::Speaker,
            CvArg::Corpus => CvPlan::Corpus,
            CvArg::Both => CvPlan::Both,
        },
        grouping: args.grouping,
        fit: train::fit::FitConfig {
            epochs: args.epochs,
            patience: args.patience,
            batch: args.batch,
            learning_rate: args.learning_rate,
            class_weights: args.class_weights == ClassWeights::Balanced,
            balance: args.balance,
            label_smoothing: args.label_smoothing,
            weight_decay: args.weight_decay,
            early_stopping: !args.no_early_stopping,
            seed: args.seed,
        },
        layout: args.layout,
        filters: usize::from(args.filters),
        blocks: usize::from(args.blocks),
        dropout: args.dropout,
        members: args.ensemble,
        linear: usize::from(args.linear),
        linear_penalty: args.linear_penalty,
        augment: usize::from(args.augment),
        voice_perturbation: args.voice_perturbation,
        test_conditions: Vec::new(),
        backend: args.backend,
        final_model: !args.no_final,
        command: defaults.command,
    };
    // In the order of the checks: the values before the window, then the window, then the rest.
    match config.validate() {
        Err(e) if e.field < Field::Floor => usage!("{} {}", flag(e.field), e.problem),
        Err(_) | Ok(()) => windowing.map(|_| ())?,
    }
    if let Err(e) = config.validate() {
        usage!("{} {}", flag(e.field), e.problem);
    }
    config.front = (args.front_end == FrontEndArg::Level).then_some(front);
    Ok(config)
}

/// The flag that sets `field`.
fn flag(field: Field) -> &'static str {
    match field {
        Field::Folds => "--folds",
        Field::Batch => "--batch",
        Field::Epochs => "--epochs",
        Field::Members => "--ensemble",
        Field::Dropout => "--dropout",
        Field::LearningRate => "--learning-rate",
        Field::LabelSmoothing => "--label-smoothing",
        Field::WeightDecay => "--weight-decay",
        Field::LinearPenalty => "--linear-penalty",
        Field::VoicePerturbation => "--voice-perturbation",
        Field::MinVoiced => "--min-voiced",
        Field::Floor => "--floor",
        Field::Filters => "--filters",
        Field::Blocks => "--blocks",
        Field::Linear => "--linear",
        Field::Augment => "--augment",
    }
}

/// `--out` refused, in the words of its flags.
fn out_error(e: OutError) -> anyhow::Error {
    match e {
        OutError::HoldsModel(out) => anyhow!(
            "{}: holds a model; --no-final writes figures only, which would replace it: give \
             another --out",
            out.display()
        ),
        OutError::NotAModel(out) => anyhow!(
            "{}: holds files but no serd model; train replaces the whole --out folder, so give a \
             new or empty folder, or an existing model's",
            out.display()
        ),
        e => e.into(),
    }
}

/// A failed run, with the flags that would change it.
fn train_error(e: TrainError) -> anyhow::Error {
    let hint = |e: &FoldError| match e {
        FoldError::TooFewSpeakers { .. } => {
            "; use fewer --folds, or --grouping none (speakers then leak between training and test)"
        }
        FoldError::NoValidation { .. } => {
            "; use more --folds (each training part then keeps more), or more data"
        }
        FoldError::Diverged(_) => "; try a lower --learning-rate",
        FoldError::LinearDiverged => "; try a larger --linear-penalty",
        FoldError::TooFewItems { .. } | FoldError::FoldCount(_) => "",
    };
    match e {
        TrainError::Config(e) => {
            anyhow::Error::new(super::Usage(format!("{} {}", flag(e.field), e.problem)))
        }
        TrainError::Out(e) => out_error(e),
        TrainError::OneCorpus(corpus) => anyhow::Error::new(super::Usage(format!(
            "--cv corpus holds out each corpus in turn and needs data from two corpora or \
             more; these sources are all {corpus}"
        ))),
        TrainError::UsableFromOneCorpus => {
            anyhow!("--cv corpus: the usable files come from one corpus only")
        }
        TrainError::Fold(e) => anyhow!("{e}{}", hint(&e)),
        e => e.into(),
    }
}

/// Progress bars of the training stages, and their figures on stderr.
struct Bars<'a> {
    bar: Option<dataset::Progress>,
    stage: Stage,
    config: &'a TrainConfig,
}

impl train::Progress for Bars<'_> {
    fn begin(&mut self, stage: Stage, steps: usize) {
        let what = match stage {
            Stage::SpeakerCv => "cross-validation, fold",
            Stage::CorpusCv => "held-out corpus",
            Stage::Final => "final model, members trained",
        };
        self.bar = Some(dataset::bar(steps as u64, what));
        self.stage = stage;
    }

    fn epoch(&mut self, part: usize, e: &Epoch) {
        if let Some(bar) = &self.bar {
            let step = if self.stage == Stage::Final {
                e.member
            } else {
                part
            };
            bar.set_position(step as u64);
            // The member in training (counted from 1) and its epoch.
            bar.set_message(format!(
                "member {}/{}: {}",
                e.member + 1,
                e.members,
                e.describe()
            ));
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn figures(&mut self, stage: Stage, cv: &CvReport, seconds: f64) {
        match stage {
            Stage::SpeakerCv => log_figures(cv, seconds, self.config),
            Stage::CorpusCv => log_corpus_figures(cv, &self.config.test_conditions),
            Stage::Final => {}
        }
    }
}

/// The cross-validated figures on stderr.
fn log_figures(cv: &CvReport, cv_s: f64, config: &TrainConfig) {
    if config.grouping == Grouping::None {
        log::warn!("--grouping none: speakers appear in training and test folds, so these figures overstate accuracy on new speakers");
    }
    serd::logging::report(&cv.utterance.table());
    if let (Some(acc), Some(uar)) = (cv.accuracy, cv.uar) {
        serd::logging::report(&format!("per fold: accuracy {acc:.3}, UAR {uar:.3} (mean ± std over {} folds); cross-validation took {cv_s:.1} s", config.folds));
    }
    if !cv.conditions.is_empty() {
        serd::logging::report(&super::eval::condition_table(
            &cv.utterance,
            &cv.conditions
                .iter()
                .map(|c| (c.condition.as_str(), &c.utterance))
                .collect::<Vec<_>>(),
        ));
    }
    let calibration = &cv.calibration;
    serd::logging::report(&format!(
        "calibration: temperature {:.2} per window, {:.2} per file; window ECE {:.3} -> {:.3}, \
         file ECE {:.3} -> {:.3}",
        calibration.temperature,
        calibration.file_temperature,
        calibration.window_before.ece,
        calibration.window_after.ece,
        calibration.utterance_before.ece,
        calibration.utterance_after.ece
    ));
}

/// The held-out corpora's figures on stderr: one line per corpus, clean and under each test
/// condition, and their mean (what generalisation is judged by).
fn log_corpus_figures(cv: &CvReport, tests: &[Condition]) {
    let pct = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{:.1} %", 100.0 * v));
    let mut s = format!("{:<16} {:>6} {:>9}", "held-out corpus", "files", "UAR");
    for c in tests {
        s += &format!(" {:>12}", c.to_string());
    }
    s += &format!(" {:>7}\n", "ECE");
    for f in &cv.folds {
        s += &format!(
            "{:<16} {:>6} {:>9}",
            f.held_out.as_deref().unwrap_or("?"),
            f.test_files,
            pct(f.uar)
        );
        for c in &f.conditions {
            s += &format!(" {:>12}", pct(c.uar));
        }
        s += &format!(
            " {:>7}\n",
            f.ece.map_or("n/a".into(), |e| format!("{e:.3}"))
        );
    }
    s += &format!(
        "{:<16} {:>6} {:>9}",
        "mean",
        "",
        pct(cv.uar.map(|u| u.mean))
    );
    for n in 0..tests.len() {
        let uars: Vec<f64> = cv
            .folds
            .iter()
            .filter_map(|f| f.conditions.get(n).and_then(|c| c.uar))
            .collect();
        s += &format!(
            " {:>12}",
            pct(serd::metrics::MeanStd::of(&uars).map(|u| u.mean))
        );
    }
    serd::logging::report(&s);
}
