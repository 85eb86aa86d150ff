//! `serd predict`: the emotion of each file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use rayon::prelude::*;
use serd::backend::{self, Backend};
use serde::Serialize;

use serd::extract::{model_stream, threads_per_file, Extraction, FileError};
use serd::inference::{argmax, Judged, Predictor};
use serd::labels::{serialize_prob, Emotion, Probs};
use serd::utterance::{Segmenter, Stretch, Utterance};

/// Predict the emotion of audio files: one JSON object per file on stdout, in the order given:
/// {"type":"prediction","file","label","confidence","probs":{class: probability},"voiced"}.
///
/// A file's prediction is the mean of its windows' probabilities, leaving out windows with too
/// little voiced speech (the model's min_voiced), which `serd listen` reports as silence. A file
/// with no window voiced enough (silence, noise) gets no emotion: "label", "confidence" and
/// "probs" are null. "voiced" is the file's share of voiced frames (the mean over its windows). A
/// file shorter than one window of the model is judged by the functionals of all of it. With
/// --windows, one object per classified window instead:
/// {"type":"window","file","t_start","t_end","label","confidence","probs","voiced"}, the windows
/// and probabilities `serd listen --input FILE` reports. With --utterances, one object per
/// utterance (a run of classified windows up to a window with too little voiced speech, or the
/// end of the file; README, "Utterances"), judged as a file is:
/// {"type":"utterance","file","t_start","t_end","windows","label","confidence","probs"}, the
/// utterance events of `serd listen --input FILE`; with both, each utterance follows its windows.
/// Probabilities have 4 decimals; docs/events.schema.json describes every line. A file that
/// cannot be read is reported on stderr and skipped; the exit status is then 1.
#[derive(Args)]
pub struct PredictArgs {
    /// Where the network runs: a GPU through wgpu when there is one (auto), wgpu, or the CPU.
    #[arg(long, value_parser = super::choice::<Backend>(), default_value = "auto")]
    backend: Backend,
    /// One line per window voiced enough to be classified, instead of one per file.
    #[arg(long)]
    windows: bool,
    /// One line per utterance (a stretch of speech up to a pause), instead of one per file.
    #[arg(long)]
    utterances: bool,
    /// Model directory (default: the bundled models/default).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Audio files; `-` reads an encoded stream (WAV, AIFF, FLAC, MP3, Ogg Vorbis) from stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub fn run(args: PredictArgs, strict: bool) -> anyhow::Result<ExitCode> {
    super::stdin_once(&args.files)?;
    let dir = super::model_dir(args.model)?;
    let predictor = Predictor::load(&dir, backend::select(args.backend)?.device)?;
    let how = Extraction::new(
        super::decode_options(strict),
        threads_per_file(args.files.len()),
    );
    // Each file streams through the model as openSMILE computes its windows: memory does not
    // grow with a file's length.
    let judged: Vec<_> = args
        .files
        .par_iter()
        .map(|f| judge_file(&predictor, f, &how))
        .collect();
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for (file, result) in args.files.iter().zip(judged) {
        let ((windows, utterance), voiced) = match result {
            Ok(judged) => judged,
            Err(e) => {
                log::error!("{}: {e}", file.display());
                failed += 1;
                continue;
            }
        };
        let name = file.display().to_string();
        if args.windows || args.utterances {
            let lines = Lines {
                windows: args.windows,
                utterances: args.utterances,
            };
            write_windows(&mut out, &predictor, &name, windows, lines)?;
            continue;
        }
        if utterance.is_none() {
            log::error!("{}: no feature window to classify", file.display());
            failed += 1;
            continue;
        }
        // The judged windows are the ones voiced enough: without any, the file is not speech
        // (listen reports each of its windows as silence), whatever the most voiced one says.
        let speech = !windows.is_empty();
        let line = json(&PredictionLine {
            kind: "prediction",
            file: &name,
            verdict: Verdict::of(utterance.filter(|_| speech)),
            voiced: voiced.mean(),
        });
        writeln!(out, "{line}").context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A file's judged windows and its probabilities ([`serd::inference::Judge::finish`]), and the
/// share of its frames that are voiced.
type FileVerdict = ((Vec<Judged>, Option<[f32; Emotion::COUNT]>), Share);

/// `file`'s windows judged by the model as openSMILE computes them.
fn judge_file(
    predictor: &Predictor,
    file: &Path,
    how: &Extraction,
) -> Result<FileVerdict, FileError> {
    let mut judge = predictor.judge();
    let mut voiced = Share::default();
    model_stream(file, predictor.info.recipe(), how, None, &mut |w| {
        voiced.add(w.voiced);
        judge.push(w);
        Ok(())
    })
    .map(|_| (judge.finish(), voiced))
}

/// Which lines `--windows` and `--utterances` ask for.
#[derive(Clone, Copy)]
struct Lines {
    windows: bool,
    utterances: bool,
}

/// A file's lines of its judged windows and of the utterances they make, each utterance after
/// its windows.
fn write_windows(
    out: &mut impl Write,
    predictor: &Predictor,
    name: &str,
    windows: Vec<Judged>,
    lines: Lines,
) -> anyhow::Result<()> {
    let mut write = |line: String| writeln!(out, "{line}").context("writing to stdout");
    let mut segmenter = Segmenter::default();
    let utterance_line = |stretch: Stretch| {
        json(&UtteranceLine {
            kind: "utterance",
            file: name,
            utterance: stretch.judge(predictor),
        })
    };
    for w in windows {
        let ended = if w.after_pause {
            segmenter.pause()
        } else {
            None
        };
        if let (true, Some(ended)) = (lines.utterances, ended) {
            write(utterance_line(ended))?;
        }
        segmenter.voiced(w.t_start, w.t_end, w.probs);
        if lines.windows {
            write(json(&WindowLine {
                kind: "window",
                file: name,
                t_start: w.t_start,
                t_end: w.t_end,
                verdict: Verdict::of(Some(w.probs)),
                voiced: w.voiced,
            }))?;
        }
    }
    if let (true, Some(ended)) = (lines.utterances, segmenter.finish()) {
        write(utterance_line(ended))?;
    }
    Ok(())
}

/// Mean of the windows' voiced shares.
#[derive(Default)]
struct Share {
    sum: f64,
    n: u64,
}

impl Share {
    fn add(&mut self, voiced: f32) {
        self.sum += f64::from(voiced);
        self.n += 1;
    }

    fn mean(&self) -> f32 {
        if self.n == 0 {
            0.0
        } else {
            (self.sum / self.n as f64) as f32
        }
    }
}

fn json(line: &impl Serialize) -> String {
    serde_json::to_string(line).expect("predictions serialise")
}

/// One line of `serd predict`: `{"type":"prediction","file","label","confidence","probs","voiced"}`.
#[derive(Serialize)]
struct PredictionLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    #[serde(flatten)]
    verdict: Verdict,
    voiced: f32,
}

/// One line of `serd predict --windows`: a window as `listen` reports it,
/// `{"type":"window","file","t_start","t_end","label","confidence","probs","voiced"}`.
#[derive(Serialize)]
struct WindowLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    t_start: f64,
    t_end: f64,
    #[serde(flatten)]
    verdict: Verdict,
    voiced: f32,
}

/// One line of `serd predict --utterances`: an utterance as `listen` reports it,
/// `{"type":"utterance","file","t_start","t_end","windows","label","confidence","probs"}`.
#[derive(Serialize)]
struct UtteranceLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    #[serde(flatten)]
    utterance: Utterance,
}

/// The label, its probability and all of them (rounded as written); all null for no speech.
#[derive(Serialize)]
struct Verdict {
    label: Option<Emotion>,
    #[serde(serialize_with = "serialize_confidence")]
    confidence: Option<f32>,
    probs: Option<Probs>,
}

impl Verdict {
    fn of(probs: Option<[f32; Emotion::COUNT]>) -> Verdict {
        let label = probs.as_ref().map(argmax);
        Verdict {
            label,
            confidence: probs.zip(label).map(|(p, l)| p[l.index()]),
            probs: probs.map(Probs),
        }
    }
}

fn serialize_confidence<S: serde::Serializer>(p: &Option<f32>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => serialize_prob(p, s),
        None => s.serialize_none(),
    }
}
