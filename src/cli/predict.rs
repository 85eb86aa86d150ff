//! `serd predict`: the emotion of each file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use rayon::prelude::*;
use serd::backend::{self, Backend};
use serde::Serialize;

use serd::extract::{model_stream, threads_per_file};
use serd::inference::{argmax, Predictor};
use serd::labels::{Emotion, Probs};

/// Predict the emotion of audio files: one JSON object per file on stdout,
/// {"file","label","confidence","probs":{class: probability}}, in the order given.
///
/// A file's prediction is the mean of its windows' probabilities (windows with too little
/// voiced speech are left out; when none is voiced enough, the most voiced one decides, so even
/// silence gets a label); a file shorter than one window of the model is judged by the
/// functionals of all of it. With --windows, one object per classified window instead:
/// {"file","t_start","t_end","label","confidence","probs","voiced"}, the windows and
/// probabilities `serd listen --input FILE` reports. A file that cannot be read is reported on
/// stderr and skipped; the exit status is then 1.
#[derive(Args)]
pub struct PredictArgs {
    /// Where the network runs: a GPU through wgpu when there is one (auto), wgpu, or the CPU.
    #[arg(long, value_parser = super::choice::<Backend>(), default_value = "auto")]
    backend: Backend,
    /// One line per window voiced enough to be classified, instead of one per file.
    #[arg(long)]
    windows: bool,
    /// Model directory (default: the bundled models/default).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Audio files; `-` reads an encoded stream (WAV, AIFF, FLAC, MP3, Ogg Vorbis) from stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub fn run(args: PredictArgs) -> anyhow::Result<ExitCode> {
    super::stdin_once(&args.files)?;
    let dir = super::model_dir(args.model)?;
    let predictor = Predictor::load(&dir, backend::select(args.backend)?.device)?;
    let threads = threads_per_file(args.files.len());
    // Each file streams through the model as openSMILE computes its windows: memory does not
    // grow with a file's length.
    let judged: Vec<_> = args
        .files
        .par_iter()
        .map(|f| {
            let mut judge = predictor.judge();
            model_stream(f, predictor.info.recipe(), threads, None, &mut |w| {
                judge.push(w);
                Ok(())
            })
            .map(|_| judge.finish())
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for (file, result) in args.files.iter().zip(judged) {
        let (windows, utterance) = match result {
            Ok(judged) => judged,
            Err(e) => {
                log::error!("{}: {e}", file.display());
                failed += 1;
                continue;
            }
        };
        let name = file.display().to_string();
        let mut write = |line: Prediction| {
            let line = serde_json::to_string(&line).expect("predictions serialise");
            writeln!(out, "{line}").context("writing to stdout")
        };
        if args.windows {
            for w in windows {
                write(Prediction {
                    window: Some(WindowTimes {
                        t_start: w.t_start,
                        t_end: w.t_end,
                        voiced: w.voiced,
                    }),
                    ..Prediction::new(&name, w.probs)
                })?;
            }
            continue;
        }
        let Some(probs) = utterance else {
            log::error!("{}: no feature window to classify", file.display());
            failed += 1;
            continue;
        };
        write(Prediction::new(&name, probs))?;
    }
    out.flush().context("writing to stdout")?;
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One line of `serd predict`: `{"file","label","confidence","probs"}`, and with `--windows` the
/// window's `t_start`, `t_end` and `voiced` (as `listen` reports windows).
#[derive(Serialize)]
struct Prediction<'a> {
    file: &'a str,
    label: Emotion,
    confidence: f32,
    probs: Probs,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    window: Option<WindowTimes>,
}

#[derive(Serialize)]
struct WindowTimes {
    t_start: f64,
    t_end: f64,
    voiced: f32,
}

impl<'a> Prediction<'a> {
    fn new(file: &'a str, probs: [f32; Emotion::COUNT]) -> Prediction<'a> {
        let label = argmax(&probs);
        Prediction {
            file,
            label,
            confidence: probs[label.index()],
            probs: Probs(probs),
            window: None,
        }
    }
}
