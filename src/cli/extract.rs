//! `serd extract`: openSMILE functionals of audio files, one line per window.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use serd::extract::{self, Format};
use serd::features::FeatureSet;

/// Print openSMILE functionals of audio files, one line per window.
///
/// Files are decoded (WAV, AIFF, FLAC, MP3, Ogg Vorbis; any channel count, mixed to mono),
/// resampled to 16 kHz and processed by openSMILE, several files at once on all cores. Output
/// goes to stdout in the order the files were given; a file that cannot be read is reported on
/// stderr and skipped, and the exit status is then 1.
///
/// JSON Lines (default): {"file","t_start","t_end","voiced","features":{openSMILE name: value}}
/// where t_start/t_end are seconds and voiced is the share of 10 ms frames with a pitch.
#[derive(Args)]
pub struct ExtractArgs {
    /// Feature set: eGeMAPSv02 (88 functionals) or ComParE 2016 (6373).
    #[arg(long = "features", value_parser = super::choice::<FeatureSet>(), default_value = "egemaps")]
    set: FeatureSet,
    /// Window length in seconds, or "whole" for one vector per file.
    #[arg(long, default_value = "whole", value_parser = super::parse_window)]
    window: super::WindowArg,
    /// Hop between windows in seconds (default: the window length, no overlap).
    #[arg(long)]
    hop: Option<f64>,
    /// Output format.
    #[arg(long, value_parser = super::choice::<Format>(), default_value = "jsonl")]
    format: Format,
    /// Files processed at once, 1 to 256 (default: one per core). With at least two of these
    /// threads per file, each file's features are computed by two openSMILE threads (same
    /// values, sooner).
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
    /// Audio files; `-` reads a stream from stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    stdin: super::StdinArgs,
}

pub fn run(args: ExtractArgs) -> anyhow::Result<ExitCode> {
    args.stdin.apply();
    let windowing = super::windowing(args.window, args.hop)?;
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(jobs))
            .build_global()
            .context("thread pool")?;
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let summary = extract::run(&args.files, args.set, windowing, args.format, &mut out)?;
    log::info!(
        "{} files, {} windows, {} failed",
        summary.files,
        summary.windows,
        summary.failed
    );
    if summary.failed > 0 {
        log::error!(
            "{} of {} files could not be extracted",
            summary.failed,
            summary.files
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
