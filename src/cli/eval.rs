//! `serd eval`: a model directory's figures on labelled data, as recorded and under simulated
//! recording conditions.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use serde::Serialize;

use serd::backend::{self, Backend};
use serd::cache::Cache;
use serd::calibration::Reliability;
use serd::corpus;
use serd::dataset::{self, Labelled};
use serd::inference::{argmax, Predictor};
use serd::labels::Emotion;
use serd::metrics::{Confusion, Report};
use serd::model_dir::TrainedOn;

/// Seed of the conditioned copies `eval` makes: the same command gives the same figures.
const EVAL_SEED: u64 = 0xE7A1;

/// Evaluate a model on labelled speech: prints one JSON object (n, accuracy, UAR, per-class
/// recall, confusion matrix, expected calibration error, skipped files, files left out by label,
/// and one entry per --condition) on stdout and a table on stderr.
///
/// Each file is classified at utterance level: the mean of its windows' probabilities. A file
/// none of whose windows is voiced enough (silence, noise) gets no emotion, as in predict and
/// listen: it is left out of the figures and listed as "not_speech". Data sources are given as
/// for `serd train`.
///
/// Conditions (--condition SPEC, repeatable) measure robustness: every file is evaluated again
/// after a simulated recording condition. SPEC is one step or several joined by "+":
/// gain:DB, white:SNR, pink:SNR, brown:SNR, babble:SNR (four other speakers of the data),
/// floor:DBFS, reverb:RT60[:DRR], telephone[:mulaw|alaw] (300–3400 Hz, 8 kHz, companding),
/// rate:HZ (rendered at that rate, then through serd's resampler); "standard" stands for
/// white:10 babble:10 reverb:0.6 telephone gain:-30 rate:48000. Example: --condition
/// reverb:0.6+white:20. Seeded: the same command gives the same figures.
#[derive(Args)]
pub struct EvalArgs {
    /// Where the network runs: a GPU through wgpu when there is one (auto), wgpu, or the CPU.
    #[arg(long, value_parser = super::choice::<Backend>(), default_value = "auto")]
    backend: Backend,
    /// Model directory (default: the bundled models/default).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// A corpus folder or CSV manifest (repeat for several).
    #[arg(long = "data", required = true, value_name = "SRC")]
    data: Vec<PathBuf>,
    /// Feature cache folder (default: ~/.cache/serd/features).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Also evaluate under this simulated recording condition (repeatable; see above).
    #[arg(long = "condition", value_name = "SPEC")]
    conditions: Vec<String>,
}

/// The JSON `serd eval` prints.
#[derive(Serialize)]
struct Output {
    #[serde(flatten)]
    report: Report,
    /// Expected calibration error of the file-level probabilities (10 bins); null when no file
    /// could be evaluated.
    ece: Option<f64>,
    /// Files left out because their label is not one of the five classes: label → count.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    left_out: BTreeMap<String, usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    conditions: Vec<Under>,
    /// Evaluated files the model was trained on (by content: `trained-on.json`); absent when
    /// none were.
    #[serde(skip_serializing_if = "Option::is_none")]
    trained_on: Option<TrainedOnFiles>,
    /// Files none of whose windows is voiced enough to be classified, which `predict` and
    /// `listen` call not speech, left out of the figures; absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_speech: Vec<NotSpeech>,
}

/// A file with too little voiced speech for a verdict, and its voiced share.
#[derive(Serialize)]
struct NotSpeech {
    path: String,
    label: Emotion,
    #[serde(serialize_with = "serd::labels::serialize_prob")]
    voiced: f32,
}

/// Takes out of `files` those none of whose clean windows is voiced enough for the model, which
/// `predict` and `listen` call not speech: they get no emotion here either, and are left out of
/// the figures (clean and under every condition), like unreadable files. Returns them with their
/// voiced share (the mean over their windows, as `predict` reports it), and warns.
fn take_not_speech(predictor: &Predictor, files: &mut Vec<Labelled>) -> Vec<NotSpeech> {
    let min_voiced = predictor.info.min_voiced;
    let speech =
        |f: &Labelled| f.windows.is_empty() || f.windows.iter().any(|w| w.is_voiced(min_voiced));
    let found: Vec<NotSpeech> = files
        .iter()
        .filter(|f| !speech(f))
        .map(|f| NotSpeech {
            path: f.path.display().to_string(),
            label: f.label,
            voiced: f.windows.iter().map(|w| w.voiced).sum::<f32>() / f.windows.len() as f32,
        })
        .collect();
    files.retain(speech);
    if !found.is_empty() {
        log::warn!(
            "{} files have too little voiced speech for a verdict (predict and listen call them \
             not speech): left out of the figures, and listed as not_speech",
            found.len()
        );
    }
    found
}

/// The evaluated files that were training data, and the figures without them.
#[derive(Serialize)]
struct TrainedOnFiles {
    n: usize,
    files: Vec<String>,
    /// The clean figures on the other files alone: the held-out figures (null when none is left).
    held_out: Option<Report>,
}

#[derive(Serialize)]
struct Under {
    condition: String,
    #[serde(flatten)]
    report: Report,
    ece: Option<f64>,
}

pub fn run(args: EvalArgs, strict: bool) -> anyhow::Result<()> {
    let conditions = super::conditions(&args.conditions, "--condition")?;
    let dir = super::model_dir(args.model)?;
    let predictor = Predictor::load(&dir, backend::select(args.backend)?.device)?;
    let dataset = corpus::load_all(&args.data)?;
    let cache = Cache::new(
        args.cache.unwrap_or_else(Cache::default_dir),
        super::decode_options(strict),
    );
    let recipe = predictor.info.recipe();
    let (mut files, skipped, _) = dataset::features(&dataset.items, recipe, &cache);
    // Babble from four recordings of other speakers of the data.
    let jobs = dataset::test_copies(&files, &conditions, EVAL_SEED, |_, _| true);
    dataset::add_copies(&mut files, &jobs, recipe, &cache);

    let not_speech = take_not_speech(&predictor, &mut files);
    let trained_on = trained_on(&dir, &predictor, &files)?;
    let (confusion, ece) = judge(&predictor, &files, |f| &f.windows);
    let under: Vec<Under> = conditions
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let (confusion, ece) = judge(&predictor, &files, |f| &f.conditions[n]);
            Under {
                condition: c.to_string(),
                report: Report::new(confusion),
                ece,
            }
        })
        .collect();
    let skipped = dataset::skipped_report(&dataset, &skipped);
    serd::logging::report(&confusion.table());
    if !under.is_empty() {
        let rows: Vec<(&str, &Confusion)> = under
            .iter()
            .map(|u| (u.condition.as_str(), &u.report.confusion))
            .collect();
        serd::logging::report(&condition_table(&confusion, &rows));
    }
    let output = Output {
        report: Report {
            skipped,
            ..Report::new(confusion)
        },
        ece,
        left_out: dataset.left_out(),
        conditions: under,
        trained_on,
        not_speech,
    };
    super::print_json(&output)?;
    if confusion.n() == 0 {
        bail!(
            "none of the {} files could be evaluated (the report lists why)",
            dataset.items.len()
        );
    }
    Ok(())
}

/// The files among `files` that the model in `dir` was trained on, with the figures on the
/// others, and a warning on stderr; `None` when there are none, or the model has no record.
fn trained_on(
    dir: &std::path::Path,
    predictor: &Predictor,
    files: &[Labelled],
) -> anyhow::Result<Option<TrainedOnFiles>> {
    let Some(record) = TrainedOn::load(dir)? else {
        return Ok(None);
    };
    let seen: Vec<bool> = files
        .iter()
        .map(|f| std::fs::read(&f.path).is_ok_and(|bytes| record.contains(&bytes)))
        .collect();
    let n = seen.iter().filter(|&&s| s).count();
    if n == 0 {
        return Ok(None);
    }
    let unseen: Vec<&Labelled> = files
        .iter()
        .zip(&seen)
        .filter(|(_, &s)| !s)
        .map(|(f, _)| f)
        .collect();
    let mut held_out = Confusion::new();
    for file in &unseen {
        if let Some(p) = predictor.utterance(&file.windows) {
            held_out.add(file.label, argmax(&p));
        }
    }
    log::warn!(
        "{n} of {} files were in the model's training data (trained_on in the JSON lists them):          figures that include them are not held-out figures; UAR on the other {}: {}",
        files.len(),
        unseen.len(),
        held_out
            .uar()
            .map_or("n/a".to_string(), |u| format!("{:.1} %", 100.0 * u))
    );
    Ok(Some(TrainedOnFiles {
        n,
        files: files
            .iter()
            .zip(&seen)
            .filter(|(_, &s)| s)
            .map(|(f, _)| f.path.to_string_lossy().into_owned())
            .collect(),
        held_out: (held_out.n() > 0).then(|| Report::new(held_out)),
    }))
}

/// The confusion matrix and expected calibration error of the files' utterance-level
/// predictions, on the windows `windows` picks for each file (files without any are left out;
/// no error without a file).
fn judge<'a>(
    predictor: &Predictor,
    files: &'a [Labelled],
    windows: impl Fn(&'a Labelled) -> &'a Vec<serd::features::Window>,
) -> (Confusion, Option<f64>) {
    let mut confusion = Confusion::new();
    let (mut probs, mut truth) = (Vec::new(), Vec::<Emotion>::new());
    for file in files {
        if let Some(p) = predictor.utterance(windows(file)) {
            confusion.add(file.label, argmax(&p));
            probs.push(p);
            truth.push(file.label);
        }
    }
    let ece = (!probs.is_empty()).then(|| Reliability::of(&probs, &truth, 10).ece);
    (confusion, ece)
}

/// Clean against each condition: files, accuracy, UAR, and the UAR's change.
pub fn condition_table(clean: &Confusion, rows: &[(&str, &Confusion)]) -> String {
    let pct = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{:.1} %", 100.0 * v));
    let mut s = format!(
        "{:<28} {:>6} {:>9} {:>9} {:>9}\n",
        "condition", "files", "accuracy", "UAR", "ΔUAR"
    );
    let line = |name: &str, c: &Confusion| {
        let delta = match (c.uar(), clean.uar()) {
            (Some(a), Some(b)) => format!("{:+.1}", 100.0 * (a - b)),
            _ => "n/a".into(),
        };
        format!(
            "{:<28} {:>6} {:>9} {:>9} {:>9}\n",
            name,
            c.n(),
            pct(c.accuracy()),
            pct(c.uar()),
            delta
        )
    };
    s += &line("clean", clean);
    for (name, c) in rows {
        s += &line(name, c);
    }
    s.trim_end().to_string()
}
