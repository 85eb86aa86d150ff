//! `serd eval`: a model directory's figures on labelled data.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use serd::backend::{self, Backend};

use serd::cache::Cache;
use serd::corpus;
use serd::metrics::{Confusion, Report};
use serd::predict::{argmax, Predictor};
use serd::train;

/// Evaluate a model on labelled speech: prints one JSON object (n, accuracy, UAR, per-class
/// recall, confusion matrix, skipped files) on stdout and a table on stderr.
///
/// Each file is classified at utterance level: the mean of its windows' probabilities. Data
/// sources are given as for `serd train`.
#[derive(Args)]
pub struct EvalArgs {
    /// Where the network runs: a GPU through wgpu when there is one (auto), wgpu, or the CPU.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
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
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let dir = super::model_dir(args.model)?;
    let predictor = Predictor::load(&dir, backend::select(args.backend)?.device)?;
    let dataset = corpus::load_all(&args.data)?;
    let cache = Cache::new(args.cache.unwrap_or_else(Cache::default_dir));
    let (files, skipped, _) = train::features(
        &dataset.items,
        predictor.info.features,
        predictor.info.windowing(),
        &cache,
    );
    let mut confusion = Confusion::new();
    for file in &files {
        if let Some(probs) = predictor.utterance(&file.windows) {
            confusion.add(file.label, argmax(&probs));
        }
    }
    let skipped = train::skipped_report(&dataset, &skipped);
    let report = Report {
        skipped,
        ..Report::new(confusion)
    };
    eprintln!("{}", confusion.table());
    println!("{}", serde_json::to_string(&report)?);
    if confusion.n() == 0 {
        bail!(
            "none of the {} files could be evaluated (the report lists why)",
            dataset.items.len()
        );
    }
    Ok(())
}
