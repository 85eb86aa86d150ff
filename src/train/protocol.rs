//! [`run`]: a whole training run from a [`TrainConfig`]: features (cached, with conditioned
//! copies), speaker-grouped and held-out-corpus cross-validation, the final model, and the model
//! directory (weights, `model.json`, `trained_on.json`, `metrics.json`, the PNGs and
//! `MODEL_CARD.md`), swapped in at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;

use crate::backend::{self, NoAdapter};
use crate::cache::Cache;
use crate::corpus::{self, CorpusError, Dataset};
use crate::dataset::{self, Labelled};
use crate::files::Staged;
use crate::folds::{FoldError, Grouping};
use crate::metrics::Report;
use crate::model_dir::{ModelDir, ModelError, TrainedOn};
use crate::plot::{write_confusion_png, write_reliability_png};
use crate::train::card::model_card;
use crate::train::config::{ConfigError, CvPlan, TrainConfig};
use crate::train::fit::FitLog;
use crate::train::metrics_file::{Cv, Data, Metrics, Protocol, Scaler, Timing, Validation};
use crate::train::{self, CvReport, Epoch, Options};

/// A stage of a run that trains models, for progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Speaker-grouped cross-validation: parts are folds.
    SpeakerCv,
    /// Each corpus held out in turn: parts are corpora.
    CorpusCv,
    /// The final model on all data: one part.
    Final,
}

/// What a caller is told while [`run`] works. Every method does nothing by default.
pub trait Progress {
    /// `stage` begins, with `steps` to go (its parts; for [`Stage::Final`], its members).
    fn begin(&mut self, _stage: Stage, _steps: usize) {}
    /// An epoch of a member ended, in part `part` of the stage.
    fn epoch(&mut self, _part: usize, _epoch: &Epoch) {}
    /// The stage begun last has ended.
    fn end(&mut self) {}
    /// A cross-validation's figures, `seconds` after cross-validation began.
    fn figures(&mut self, _stage: Stage, _cv: &CvReport, _seconds: f64) {}
}

/// A [`Progress`] that says nothing.
pub struct Silent;

impl Progress for Silent {}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Out(#[from] OutError),
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// Held-out-corpus cross-validation alone, with data from one corpus (named).
    #[error(
        "holding out each corpus in turn needs data from two corpora or more; these sources are \
         all {0}"
    )]
    OneCorpus(String),
    #[error("no usable files: every file failed (see above)")]
    NoUsableFiles,
    /// Held-out-corpus cross-validation alone, and the usable files come from one corpus.
    #[error("held-out-corpus cross-validation: the usable files come from one corpus only")]
    UsableFromOneCorpus,
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error(transparent)]
    Backend(#[from] NoAdapter),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Writing into the model directory `0` (or putting it in place) failed.
    #[error("{}: {what}", .path.display())]
    Write {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: WriteError,
    },
}

/// What failed to be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// [`TrainError::Write`] of `path`, saying `what` failed.
fn cannot<E: Into<WriteError>>(
    path: impl Into<PathBuf>,
    what: &'static str,
) -> impl FnOnce(E) -> TrainError {
    let path = path.into();
    move |e| TrainError::Write {
        path,
        what,
        source: e.into(),
    }
}

/// Why the model directory cannot be replaced by a new one.
#[derive(Debug, thiserror::Error)]
pub enum OutError {
    #[error("{}: exists and is not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error("{}: cannot read: {error}", .path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// It holds a model, and a run without a final model would replace it with figures alone.
    #[error("{}: holds a model, which figures without a final model would replace", .0.display())]
    HoldsModel(PathBuf),
    /// It holds other things than a serd model.
    #[error("{}: holds files but no serd model, and the whole folder would be replaced", .0.display())]
    NotAModel(PathBuf),
}

/// The model directory is replaced whole by the new one, so it must be new, empty or a model
/// folder (one with `model.json` or `metrics.json`): never a folder of other things. Without a
/// final model it must not hold a model, which the new figures would not describe.
pub fn check_out(out: &Path, final_model: bool) -> Result<(), OutError> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(OutError::NotAFolder(out.into()));
    }
    let empty = std::fs::read_dir(out)
        .map_err(|error| OutError::Unreadable {
            path: out.into(),
            error,
        })?
        .next()
        .is_none();
    let model = out.join("model.json").exists();
    if !final_model && model {
        return Err(OutError::HoldsModel(out.into()));
    }
    if !empty && !model && !out.join("metrics.json").exists() {
        return Err(OutError::NotAModel(out.into()));
    }
    Ok(())
}

/// Features of every usable file and its conditioned copies, with the folds.
struct Prepared {
    dataset: Dataset,
    files: Vec<Labelled>,
    skipped: Vec<corpus::Skipped>,
    fold_of: Vec<usize>,
    features_s: f64,
    hits: usize,
}

/// Trains as `config` says and writes the model directory; returns the cross-validated
/// file-level figures (speaker-grouped when made), with the files that could not be used.
pub fn run(config: &TrainConfig, progress: &mut dyn Progress) -> Result<Report, TrainError> {
    config.validate()?;
    check_out(&config.out, config.final_model)?;
    crate::files::check_writable_parent(&config.out)?;
    let options = config.options();
    let prepared = prepare(config, &options)?;
    let files = &prepared.files;

    let selected = backend::select(config.backend)?;
    log::info!("training on {}", selected.name);
    let device = selected.device;
    let started = Instant::now();
    let (speaker_cv, corpus_cv) = cross_validations(config, &prepared, &device, progress)?;
    let cv_s = started.elapsed().as_secs_f64();
    // Held-out corpora alone: their figures and temperatures stand for the model.
    let cv = match (&speaker_cv, &corpus_cv) {
        (Some(cv), _) | (None, Some(cv)) => cv,
        // Every file of all but one corpus failed (reported above).
        (None, None) => return Err(TrainError::UsableFromOneCorpus),
    };
    let report = Report {
        skipped: dataset::skipped_report(&prepared.dataset, &prepared.skipped),
        ..Report::new(cv.utterance)
    };

    // Everything is written beside the model directory and swapped in at the end: an interrupted
    // or failed run leaves the old model as it was.
    let out = &config.out;
    let staged = Staged::new(out).map_err(cannot(out, "cannot create a folder beside it"))?;
    let dir = staged.path().to_path_buf();
    let (final_fit, final_s) = if config.final_model {
        let started = Instant::now();
        let log = final_model(files, &options, &device, cv, &dir, out, progress)?;
        (Some(log), started.elapsed().as_secs_f64())
    } else {
        (None, 0.0)
    };
    let runs = Runs {
        speaker_cv: speaker_cv.as_ref(),
        corpus_cv: corpus_cv.as_ref(),
        report: &report,
        final_fit,
        timing: Timing {
            features: prepared.features_s,
            cross_validation: cv_s,
            final_model: final_s,
            cache_hits: prepared.hits,
        },
    };
    let metrics = metrics(config, &options, &prepared, &selected.name, runs);
    write_reports(
        &dir,
        out,
        &metrics,
        speaker_cv.as_ref(),
        corpus_cv.as_ref(),
        config,
    )?;
    staged
        .commit()
        .map_err(cannot(out, "cannot put the new model in place"))?;
    Ok(report)
}

/// The cross-validations `config` asks for: speaker-grouped folds, then held-out corpora (with
/// two corpora or more), calibrated with the folds' temperatures when those were fitted.
fn cross_validations(
    config: &TrainConfig,
    prepared: &Prepared,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<(Option<CvReport>, Option<CvReport>), TrainError> {
    let files = &prepared.files;
    let started = Instant::now();
    // One cross-validation over the parts `fold_of` names, its figures reported.
    let mut run = |stage, fold_of: &[usize], temperatures| -> Result<CvReport, TrainError> {
        let cv = cross_validate(
            stage,
            files,
            fold_of,
            config,
            temperatures,
            device,
            progress,
        )?;
        progress.figures(stage, &cv, started.elapsed().as_secs_f64());
        Ok(cv)
    };
    let speaker_cv = if config.cv != CvPlan::Corpus {
        Some(run(Stage::SpeakerCv, &prepared.fold_of, None)?)
    } else {
        None
    };
    let (corpus_of, corpora) = train::corpus_folds(files);
    let corpus_cv = if corpora.len() >= 2 && config.cv != CvPlan::Speaker {
        let temperatures = speaker_cv
            .as_ref()
            .map(|cv| (cv.calibration.temperature, cv.calibration.file_temperature));
        Some(run(Stage::CorpusCv, &corpus_of, temperatures)?)
    } else {
        None
    };
    Ok((speaker_cv, corpus_cv))
}

/// The data sources loaded and described, the features of their files (and the copies the run
/// needs), and the folds.
fn prepare(config: &TrainConfig, options: &Options) -> Result<Prepared, TrainError> {
    let dataset = corpus::load_all(&config.data)?;
    describe(&dataset, config.grouping);
    let mut corpora: Vec<&str> = dataset.items.iter().map(|i| i.corpus.as_str()).collect();
    corpora.sort_unstable();
    corpora.dedup();
    if corpora.len() < 2 {
        let only = corpora.first().unwrap_or(&"?").to_string();
        match config.cv {
            CvPlan::Corpus => return Err(TrainError::OneCorpus(only)),
            CvPlan::Both => log::info!(
                "one corpus ({only}): no corpus is held out (give --data of two corpora or more for \
                 those figures)"
            ),
            CvPlan::Speaker => {}
        }
    }
    let cache = Cache::new(
        config.cache.clone().unwrap_or_else(Cache::default_dir),
        config.decode,
    );
    let started = Instant::now();
    let (mut files, skipped, mut hits) =
        dataset::features(&dataset.items, options.recipe(), &cache);
    if files.is_empty() {
        return Err(TrainError::NoUsableFiles);
    }
    let fold_of = train::assign_folds(&files, options)?;
    let jobs = train::plan_copies(
        &files,
        &fold_of,
        config.augment,
        config.voice_perturbation,
        &config.test_conditions,
        config.fit.seed,
    );
    hits += dataset::add_copies(&mut files, &jobs, options.recipe(), &cache);
    let features_s = started.elapsed().as_secs_f64();
    log::info!(
        "features of {} files and {} conditioned copies in {features_s:.1} s ({hits} from the \
         cache)",
        files.len(),
        jobs.len()
    );
    Ok(Prepared {
        dataset,
        files,
        skipped,
        fold_of,
        features_s,
        hits,
    })
}

/// What the data sources hold and what will not be used, on stderr.
fn describe(dataset: &Dataset, grouping: Grouping) {
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

/// [`train::cross_validate`] over the parts `fold_of` names (the folds or corpora of `stage`),
/// with progress.
fn cross_validate(
    stage: Stage,
    files: &[Labelled],
    fold_of: &[usize],
    config: &TrainConfig,
    temperatures: Option<(f32, f32)>,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<CvReport, TrainError> {
    let parts = fold_of.iter().max().map_or(0, |m| m + 1);
    progress.begin(stage, parts);
    let cv = train::cross_validate(
        files,
        fold_of,
        &config.test_conditions,
        &config.options(),
        temperatures,
        device,
        &mut |fold, e: Epoch| progress.epoch(fold, &e),
    )?;
    progress.end();
    Ok(cv)
}

/// The final model, on all data, with the cross-validated temperatures, saved into `dir` (which
/// becomes `out`).
fn final_model(
    files: &[Labelled],
    options: &Options,
    device: &Device,
    cv: &CvReport,
    dir: &Path,
    out: &Path,
    progress: &mut dyn Progress,
) -> Result<Vec<FitLog>, TrainError> {
    let all: Vec<&Labelled> = files.iter().collect();
    progress.begin(Stage::Final, options.members + options.linear.members);
    let (mut predictor, log) =
        train::train_one(&all, options, device, &mut |e: Epoch| progress.epoch(0, &e))?;
    progress.end();
    predictor.set_temperatures(cv.calibration.temperature, cv.calibration.file_temperature);
    let what = "cannot write the model";
    ModelDir::save(dir, &predictor.info, predictor.models()).map_err(cannot(out, what))?;
    let paths: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    TrainedOn::of(&paths)
        .save(dir)
        .map_err(cannot::<ModelError>(out, what))?;
    Ok(log)
}

/// What the run measured, for [`metrics`].
struct Runs<'a> {
    speaker_cv: Option<&'a CvReport>,
    corpus_cv: Option<&'a CvReport>,
    report: &'a Report,
    final_fit: Option<Vec<FitLog>>,
    timing: Timing,
}

/// `metrics.json`'s content.
fn metrics<'a>(
    config: &'a TrainConfig,
    options: &'a Options,
    prepared: &'a Prepared,
    backend: &'a str,
    runs: Runs<'a>,
) -> Metrics<'a> {
    let dataset = &prepared.dataset;
    let (window_s, hop_s) = options.windowing.seconds();
    Metrics {
        protocol: Protocol {
            folds: config.folds,
            grouping: config.grouping,
            held_out_corpora: runs.corpus_cv.is_some(),
            // Files without a speaker are groups of their own: their speakers may straddle folds.
            speaker_independent: config.grouping == Grouping::Speaker
                && dataset.sources.iter().all(|s| s.speakerless == 0),
            validation: if options.fit.early_stopping {
                Validation::EarlyStopping
            } else {
                Validation::FixedEpochs
            },
            scaler: Scaler::TrainingPartOnly,
            features: config.set,
            window_s,
            hop_s,
            min_voiced: config.min_voiced,
            front_end: options.front,
            augment: config.augment as u16,
            voice_perturbation: config.voice_perturbation,
            test_conditions: config
                .test_conditions
                .iter()
                .map(ToString::to_string)
                .collect(),
            model: &options.model,
            fit: &options.fit,
            members: options.members,
            linear: (options.linear.members > 0).then_some(&options.linear),
            backend,
        },
        data: Data {
            sources: &dataset.sources,
            files: prepared.files.len(),
            speakers: dataset.speakers(),
            counts: dataset.counts(),
            left_out: dataset.left_out(),
        },
        cv: runs.speaker_cv.map(|cv| Cv::new(cv, runs.report.clone())),
        corpus_cv: runs
            .corpus_cv
            .map(|cv| Cv::new(cv, Report::new(cv.utterance))),
        final_fit: runs.final_fit,
        timing_s: runs.timing,
        serd_version: env!("CARGO_PKG_VERSION"),
        command: config.command.clone(),
    }
}

/// `metrics.json`, the confusion and reliability PNGs and `MODEL_CARD.md`, into `dir` (which
/// becomes `out`).
fn write_reports(
    dir: &Path,
    out: &Path,
    metrics: &Metrics,
    speaker_cv: Option<&CvReport>,
    corpus_cv: Option<&CvReport>,
    config: &TrainConfig,
) -> Result<(), TrainError> {
    const CANNOT: &str = "cannot write";
    let write = |name: &str, text: String| -> Result<(), TrainError> {
        std::fs::write(dir.join(name), text).map_err(cannot(out.join(name), CANNOT))
    };
    let json = metrics
        .to_json()
        .map_err(cannot(out.join("metrics.json"), CANNOT))?;
    write("metrics.json", json)?;
    let family = match (config.blocks, config.linear) {
        (0, _) => "linear",
        (_, 0) => "CNN",
        _ => "CNN + linear",
    };
    let model = format!("serd {} {family}", config.set.name());
    let speaker_title = format!(
        "{model}, {}-fold CV ({})",
        config.folds,
        grouping_words(config.grouping)
    );
    let corpus_title = format!("{model}, each corpus held out");
    let png = |confusion, name: &str, title: &str| {
        write_confusion_png(confusion, &dir.join(name), title)
            .map_err(cannot(out.join(name), CANNOT))
    };
    if let Some(cv) = speaker_cv {
        png(&cv.utterance, "confusion.png", &speaker_title)?;
    }
    if let Some(cv) = corpus_cv {
        png(&cv.utterance, "confusion-corpora.png", &corpus_title)?;
    }
    // The calibration fitted (speaker-grouped when made), and how it holds on held-out corpora.
    let (fitted, title) = match (speaker_cv, corpus_cv) {
        (Some(cv), _) => (&cv.calibration, &speaker_title),
        (None, Some(cv)) => (&cv.calibration, &corpus_title),
        (None, None) => return Err(TrainError::UsableFromOneCorpus),
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
    .map_err(cannot(out.join("reliability.png"), CANNOT))?;
    write("MODEL_CARD.md", model_card(metrics))
}

/// How the folds were grouped, for a figure's title.
fn grouping_words(grouping: Grouping) -> &'static str {
    match grouping {
        Grouping::Speaker => "speaker-independent",
        Grouping::None => "utterance folds, speakers leak",
    }
}
