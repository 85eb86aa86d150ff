//! `serd train`: runs the protocol of `serd::train` and writes the model directory: weights and
//! `model.json`, `metrics.json` (everything measured), `confusion.png`, `MODEL_CARD.md`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use burn::tensor::Device;
use clap::Args;

use serd::backend::{self, Backend};
use serd::cache::Cache;
use serd::conditions::Condition;
use serd::corpus;
use serd::dataset::{self, Labelled};
use serd::features::{FeatureSet, FrontEnd};
use serd::files::Staged;
use serd::folds::Grouping;
use serd::metrics::Report;
use serd::model::{CnnConfig, Layout};
use serd::model_dir::{ModelDir, TrainedOn};
use serd::plot::{write_confusion_png, write_reliability_png};
use serd::train::fit::{Balance, FitConfig, FitLog};
use serd::train::{self, Epoch, Linear, Options};

use super::metrics_file::{Cv, Data, Metrics, Protocol, Timing};
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
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.1)]
    min_voiced: f32,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 5)]
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
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Epochs without improvement of the validation loss before stopping.
    #[arg(long, default_value_t = 10)]
    patience: usize,
    /// Examples per optimisation step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3)]
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
        default_value_t = 0.1
    )]
    label_smoothing: f64,
    /// L2 penalty on the network's weights (Adam's coupled weight decay), 0 for none. A penalty
    /// of λ on the mean loss is scikit-learn's LogisticRegression with C = 1 / (λ × examples).
    #[arg(
        long,
        value_name = "L",
        allow_negative_numbers = true,
        default_value_t = 0.0
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
    #[arg(long, value_name = "N", default_value_t = 128,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    filters: u16,
    /// Convolution blocks before the output layer: 2 (the reference's CNN), 1, or 0 (the output
    /// layer alone: a linear model of the standardised features, multinomial logistic regression).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    blocks: u8,
    /// Probability of dropping a whole channel after each block while training, 0 to below 1.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "P",
        default_value_t = 0.5
    )]
    dropout: f64,
    /// Seed of folds, shuffles and initial weights (runs are reproducible on the CPU backend).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Feature cache folder (default: ~/.cache/serd/features).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Networks per model (different seeds), probabilities averaged.
    #[arg(long, default_value_t = 1)]
    ensemble: usize,
    /// Linear members added to the ensemble: multinomial logistic regressions on the same
    /// standardised features, each fitted to its L2-penalised optimum on the whole training part
    /// (300 epochs of full-batch Adam at 0.003, the last kept; no early stopping), their
    /// probabilities averaged with the networks'. A model family that errs on other files than
    /// the CNN: one of each beat two CNNs here (BENCHMARKS.md, "A linear member").
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=64))]
    linear: u8,
    /// L2 penalty of the linear members (on the mean loss; scikit-learn's C = 1 / (L × examples)).
    #[arg(
        long,
        value_name = "L",
        allow_negative_numbers = true,
        default_value_t = 0.06
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
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=20))]
    augment: u16,
    /// Share of the augmented copies whose voice is changed: played 0.9 to 1.1 times as fast
    /// (tempo, pitch and formants alike: speed perturbation), so the model meets more voices than
    /// the corpora's speakers. 0 changes no voice.
    #[arg(
        long,
        value_name = "P",
        allow_negative_numbers = true,
        default_value_t = 0.0
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

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    check_out(&args.out, args.no_final)?;
    // A folder the new model cannot be written beside fails now, not after the training.
    serd::files::check_writable_parent(&args.out)?;
    let options = options(&args)?;
    if matches!(args.window, WindowArg::Whole) {
        log::warn!(
            "--window whole: the model will classify whole files (predict, eval); listen needs \
             a model of windows (--window SECONDS)"
        );
    }
    let tests = super::conditions(&args.test_conditions, "--test-condition")?;
    let dataset = corpus::load_all(&args.data)?;
    describe(&dataset, args.grouping);
    let mut corpora: Vec<&str> = dataset.items.iter().map(|i| i.corpus.as_str()).collect();
    corpora.sort_unstable();
    corpora.dedup();
    if corpora.len() < 2 {
        match args.cv {
            CvArg::Corpus => usage!(
                "--cv corpus holds out each corpus in turn and needs data from two corpora or \
                 more; these sources are all {}",
                corpora.first().unwrap_or(&"?")
            ),
            CvArg::Both => log::info!(
                "one corpus ({}): no corpus is held out (give --data of two corpora or more for \
                 those figures)",
                corpora.first().unwrap_or(&"?")
            ),
            CvArg::Speaker => {}
        }
    }
    let cache = Cache::new(args.cache.clone().unwrap_or_else(Cache::default_dir));
    let started = Instant::now();
    let (mut files, skipped, mut hits) =
        dataset::features(&dataset.items, options.recipe(), &cache);
    if files.is_empty() {
        bail!("no usable files: every file failed (see above)");
    }
    let fold_of = train::assign_folds(&files, &options)?;
    let jobs = train::plan_copies(
        &files,
        &fold_of,
        usize::from(args.augment),
        args.voice_perturbation,
        &tests,
        args.seed,
    );
    hits += dataset::add_copies(&mut files, &jobs, options.recipe(), &cache);
    let features_s = started.elapsed().as_secs_f64();
    log::info!(
        "features of {} files and {} conditioned copies in {features_s:.1} s ({hits} from the \
         cache)",
        files.len(),
        jobs.len()
    );

    let selected = backend::select(args.backend)?;
    log::info!("training on {}", selected.name);
    let device = selected.device;
    let started = Instant::now();
    let speaker_cv = if args.cv != CvArg::Corpus {
        let cv = cross_validate(
            &files,
            &fold_of,
            &tests,
            &options,
            None,
            &device,
            "cross-validation, fold",
        )?;
        log_figures(&cv, started.elapsed().as_secs_f64(), &args);
        Some(cv)
    } else {
        None
    };
    let (corpus_of, corpora) = train::corpus_folds(&files);
    let corpus_cv = if corpora.len() >= 2 && args.cv != CvArg::Speaker {
        let temperatures = speaker_cv
            .as_ref()
            .map(|cv| (cv.calibration.temperature, cv.calibration.file_temperature));
        let cv = cross_validate(
            &files,
            &corpus_of,
            &tests,
            &options,
            temperatures,
            &device,
            "held-out corpus",
        )?;
        log_corpus_figures(&cv, &tests);
        Some(cv)
    } else {
        None
    };
    let cv_s = started.elapsed().as_secs_f64();
    // --cv corpus alone: the held-out corpora's figures and temperatures stand for the model.
    let cv = match (&speaker_cv, &corpus_cv) {
        (Some(cv), _) | (None, Some(cv)) => cv,
        // Every file of all but one corpus failed (reported above).
        (None, None) => bail!("--cv corpus: the usable files come from one corpus only"),
    };

    let skipped_json = dataset::skipped_report(&dataset, &skipped);
    let report = Report {
        skipped: skipped_json,
        ..Report::new(cv.utterance)
    };

    // Everything is written beside --out and swapped in at the end: an interrupted or failed run
    // leaves the old model as it was.
    let staged = Staged::new(&args.out)
        .with_context(|| format!("{}: cannot create a folder beside it", args.out.display()))?;
    let dir = staged.path().to_path_buf();
    let (final_fit, final_s) = if args.no_final {
        (None, 0.0)
    } else {
        let started = Instant::now();
        let log = final_model(&files, &options, &device, cv, &dir, &args)?;
        (Some(log), started.elapsed().as_secs_f64())
    };

    let metrics = Metrics {
        protocol: Protocol {
            folds: args.folds,
            grouping: args.grouping,
            held_out_corpora: corpus_cv.is_some(),
            // Files without a speaker are groups of their own: their speakers may straddle folds.
            speaker_independent: args.grouping == Grouping::Speaker
                && dataset.sources.iter().all(|s| s.speakerless == 0),
            validation: if options.fit.early_stopping {
                "early stopping on a split of each training part, grouped like the folds"
            } else {
                "none: a fixed number of epochs on the whole training part"
            },
            scaler: "fitted on each training part only",
            features: args.set,
            window_s: options.windowing.seconds().0,
            hop_s: options.windowing.seconds().1,
            min_voiced: args.min_voiced,
            front_end: options.front,
            augment: args.augment,
            voice_perturbation: args.voice_perturbation,
            test_conditions: tests.iter().map(Condition::to_string).collect(),
            model: &options.model,
            fit: &options.fit,
            members: options.members,
            linear: (options.linear.members > 0).then_some(&options.linear),
            backend: &selected.name,
        },
        data: Data {
            sources: &dataset.sources,
            files: files.len(),
            speakers: dataset.speakers(),
            counts: dataset.counts(),
            left_out: dataset.left_out(),
        },
        cv: speaker_cv.as_ref().map(|cv| Cv::new(cv, report.clone())),
        corpus_cv: corpus_cv
            .as_ref()
            .map(|cv| Cv::new(cv, Report::new(cv.utterance))),
        final_fit,
        timing_s: Timing {
            features: features_s,
            cross_validation: cv_s,
            final_model: final_s,
            cache_hits: hits,
        },
        serd_version: env!("CARGO_PKG_VERSION"),
        // As a user would type it again: the program as `serd`, wherever this binary lives.
        command: std::iter::once("serd".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    write_reports(
        &dir,
        &metrics,
        speaker_cv.as_ref(),
        corpus_cv.as_ref(),
        &args,
    )?;
    staged
        .commit()
        .with_context(|| format!("{}: cannot put the new model in place", args.out.display()))?;
    super::print_json(&report)?;
    log::info!("wrote {}", args.out.display());
    Ok(())
}

/// The final model, on all data, with the cross-validated temperatures, saved into `dir`.
fn final_model(
    files: &[Labelled],
    options: &Options,
    device: &Device,
    cv: &train::CvReport,
    dir: &Path,
    args: &TrainArgs,
) -> anyhow::Result<Vec<FitLog>> {
    let all: Vec<&Labelled> = files.iter().collect();
    let progress = dataset::bar(
        (options.members + options.linear.members) as u64,
        "final model, members trained",
    );
    let (mut predictor, log) = train::train_one(&all, options, device, &mut |e: Epoch| {
        progress.set_position(e.member as u64);
        progress.set_message(member_progress(&e));
    })?;
    progress.finish_and_clear();
    predictor.set_temperatures(cv.calibration.temperature, cv.calibration.file_temperature);
    ModelDir::save(dir, &predictor.info, predictor.models())
        .with_context(|| format!("{}: cannot write the model", args.out.display()))?;
    let paths: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    TrainedOn::of(&paths)
        .save(dir)
        .with_context(|| format!("{}: cannot write the model", args.out.display()))?;
    Ok(log)
}

/// `metrics.json`, the confusion and reliability PNGs and `MODEL_CARD.md`, into `dir`.
fn write_reports(
    dir: &Path,
    metrics: &Metrics,
    speaker_cv: Option<&train::CvReport>,
    corpus_cv: Option<&train::CvReport>,
    args: &TrainArgs,
) -> anyhow::Result<()> {
    let cannot_write = |name: &str| format!("{}: cannot write", args.out.join(name).display());
    let write = |name: &str, text: String| -> anyhow::Result<()> {
        std::fs::write(dir.join(name), text).with_context(|| cannot_write(name))
    };
    write("metrics.json", metrics.to_json()?)?;
    let family = match (args.blocks, args.linear) {
        (0, _) => "linear",
        (_, 0) => "CNN",
        _ => "CNN + linear",
    };
    let model = format!("serd {} {family}", args.set.name());
    let speaker_title = format!(
        "{model}, {}-fold CV ({})",
        args.folds,
        grouping_words(args.grouping)
    );
    let corpus_title = format!("{model}, each corpus held out");
    if let Some(cv) = speaker_cv {
        write_confusion_png(&cv.utterance, &dir.join("confusion.png"), &speaker_title)
            .with_context(|| cannot_write("confusion.png"))?;
    }
    if let Some(cv) = corpus_cv {
        write_confusion_png(
            &cv.utterance,
            &dir.join("confusion-corpora.png"),
            &corpus_title,
        )
        .with_context(|| cannot_write("confusion-corpora.png"))?;
    }
    // The calibration fitted (speaker-grouped when made), and how it holds on held-out corpora.
    let (fitted, title) = match speaker_cv {
        Some(cv) => (&cv.calibration, &speaker_title),
        None => (&corpus_cv.expect("one CV ran").calibration, &corpus_title),
    };
    let mut curves = vec![
        ("window, raw", &fitted.window_before),
        ("window, calibrated", &fitted.window_after),
        ("file, calibrated", &fitted.utterance_after),
    ];
    if let (Some(_), Some(cv)) = (speaker_cv, corpus_cv) {
        curves.push(("file, held-out corpora", &cv.calibration.utterance_after));
    }
    write_reliability_png(
        &curves,
        &dir.join("reliability.png"),
        &format!("{title}: reliability"),
    )
    .with_context(|| cannot_write("reliability.png"))?;
    write("MODEL_CARD.md", super::card::model_card(metrics))?;
    Ok(())
}

/// The training options from the command line, every value checked.
fn options(args: &TrainArgs) -> anyhow::Result<Options> {
    if args.folds < 2 {
        usage!("--folds must be at least 2, not {}", args.folds);
    }
    for (flag, value) in [
        ("--batch", args.batch),
        ("--epochs", args.epochs),
        ("--ensemble", args.ensemble),
    ] {
        if value == 0 {
            usage!("{flag} must be at least 1");
        }
    }
    if !(0.0..1.0).contains(&args.dropout) {
        usage!(
            "--dropout must be at least 0 and below 1, not {}",
            args.dropout
        );
    }
    if !(args.learning_rate.is_finite() && args.learning_rate > 0.0) {
        usage!(
            "--learning-rate must be a positive number, not {}",
            args.learning_rate
        );
    }
    if !(0.0..1.0).contains(&args.label_smoothing) {
        usage!(
            "--label-smoothing is a share from 0 up to (not including) 1, not {}",
            args.label_smoothing
        );
    }
    for (flag, value) in [
        ("--weight-decay", args.weight_decay),
        ("--linear-penalty", args.linear_penalty),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            usage!("{flag} must be 0 or a positive number, not {value}");
        }
    }
    if !(0.0..=1.0).contains(&args.voice_perturbation) {
        usage!(
            "--voice-perturbation is a share between 0 and 1, not {}",
            args.voice_perturbation
        );
    }
    if !(0.0..=1.0).contains(&args.min_voiced) {
        usage!(
            "--min-voiced is a share between 0 and 1, not {}",
            args.min_voiced
        );
    }
    // Half the window by default: every moment of speech is in two windows, as in the bundled
    // model, and listen reports every hop.
    let hop = args.hop.or(match args.window {
        WindowArg::Seconds(w) => Some((w * 50.0).round().max(1.0) / 100.0),
        WindowArg::Whole => None,
    });
    let windowing = windowing(args.window, hop)?;
    let front = FrontEnd {
        floor_dbfs: args.floor,
        ..FrontEnd::DEFAULT
    };
    if front.problem().is_some() {
        usage!(
            "--floor must be between -140 dBFS and the speech level ({} dBFS), not {}",
            front.level_dbfs,
            args.floor
        );
    }
    let fit = FitConfig {
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
    };
    Ok(Options {
        set: args.set,
        windowing,
        front: (args.front_end == FrontEndArg::Level).then_some(front),
        min_voiced: args.min_voiced,
        folds: args.folds,
        grouping: args.grouping,
        model: CnnConfig::new(args.set.dimension())
            .with_layout(args.layout)
            .with_filters(usize::from(args.filters))
            .with_blocks(usize::from(args.blocks))
            .with_dropout(args.dropout),
        linear: Linear::new(usize::from(args.linear), args.linear_penalty, &fit),
        fit,
        members: args.ensemble,
    })
}

/// What the data sources hold and what will not be used, on stderr.
fn describe(dataset: &corpus::Dataset, grouping: Grouping) {
    for problem in dataset.problems() {
        log::warn!("{}: {} (skipped)", problem.path.display(), problem.error);
    }
    for source in dataset.sources.iter().filter(|s| s.speakerless > 0) {
        if grouping == Grouping::Speaker {
            log::warn!(
                "{}: {} files have no speaker, so each counts as its own speaker and grouped \
                 folds cannot keep a speaker's files together",
                source.root.display(),
                source.speakerless
            );
        }
    }
    let left_out = dataset.left_out();
    if !left_out.is_empty() {
        let list: Vec<String> = left_out.iter().map(|(l, n)| format!("{l} {n}")).collect();
        log::info!(
            "left out (not one of the five classes): {}",
            list.join(", ")
        );
    }
    log::info!(
        "{} files from {} speakers",
        dataset.items.len(),
        dataset.speakers()
    );
}

/// The cross-validated figures on stderr.
fn log_figures(cv: &train::CvReport, cv_s: f64, args: &TrainArgs) {
    if args.grouping == Grouping::None {
        log::warn!("--grouping none: speakers appear in training and test folds, so these figures overstate accuracy on new speakers");
    }
    serd::logging::report(&cv.utterance.table());
    if let (Some(acc), Some(uar)) = (cv.accuracy, cv.uar) {
        serd::logging::report(&format!("per fold: accuracy {acc:.3}, UAR {uar:.3} (mean ± std over {} folds); cross-validation took {cv_s:.1} s", args.folds));
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
fn log_corpus_figures(cv: &train::CvReport, tests: &[Condition]) {
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

/// `--out` is replaced whole by the new model folder, so it must be new, empty or a model folder
/// (one with `model.json` or `metrics.json`): never a folder of other things. With `--no-final`
/// (figures only) it must not hold a model, which the new figures would not describe.
fn check_out(out: &Path, no_final: bool) -> anyhow::Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        bail!("{}: exists and is not a folder", out.display());
    }
    let empty = std::fs::read_dir(out)
        .with_context(|| format!("{}: cannot read", out.display()))?
        .next()
        .is_none();
    let model = out.join("model.json").exists();
    if no_final && model {
        bail!(
            "{}: holds a model; --no-final writes figures only, which would replace it: give \
             another --out",
            out.display()
        );
    }
    if !empty && !model && !out.join("metrics.json").exists() {
        bail!(
            "{}: holds files but no serd model; train replaces the whole --out folder, so give a \
             new or empty folder, or an existing model's",
            out.display()
        );
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ClassWeights {
    Balanced,
    None,
}

fn grouping_words(grouping: Grouping) -> &'static str {
    match grouping {
        Grouping::Speaker => "speaker-independent",
        Grouping::None => "utterance folds, speakers leak",
    }
}

/// [`train::cross_validate`] over the parts `fold_of` names, with a progress bar saying `what`.
fn cross_validate(
    files: &[Labelled],
    fold_of: &[usize],
    tests: &[Condition],
    options: &Options,
    temperatures: Option<(f32, f32)>,
    device: &Device,
    what: &str,
) -> anyhow::Result<train::CvReport> {
    let parts = fold_of.iter().max().map_or(0, |m| m + 1);
    let progress = dataset::bar(parts as u64, what);
    let cv = train::cross_validate(
        files,
        fold_of,
        tests,
        options,
        temperatures,
        device,
        &mut |fold, e: Epoch| {
            progress.set_position(fold as u64);
            progress.set_message(member_progress(&e));
        },
    )?;
    progress.finish_and_clear();
    Ok(cv)
}

/// The member in training (counted from 1) and its epoch, for a progress bar's message.
fn member_progress(e: &Epoch) -> String {
    format!("member {}/{}: {}", e.member + 1, e.members, e.describe())
}
