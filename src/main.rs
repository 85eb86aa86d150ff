//! The `serd` command line.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

mod cli;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use serd::extract::{self, Format};
use serd::features::FeatureSet;

/// serd's version and the bundled model it carries.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SERD_MODEL"), ")");

/// serd: speech emotion recognition from openSMILE features.
///
/// openSMILE (vendored, audEERING research licence: non-commercial use only) computes the
/// eGeMAPSv02 or ComParE 2016 functionals that serd works on.
#[derive(Parser)]
#[command(name = "serd", version = VERSION, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// More messages on stderr (-v info, -vv debug, -vvv trace, openSMILE's own log included).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Errors only on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Damaged or truncated audio files are errors. Without it they are used as far as they
    /// decode, with a warning naming the file and how much was decoded.
    #[arg(long, global = true)]
    strict: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Listen(cli::listen::ListenArgs),
    Devices(cli::listen::DevicesArgs),
    Extract(ExtractArgs),
    Train(cli::train::TrainArgs),
    Eval(cli::eval::EvalArgs),
    Predict(cli::predict::PredictArgs),
}

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
struct ExtractArgs {
    /// Feature set: eGeMAPSv02 (88 functionals) or ComParE 2016 (6373).
    #[arg(long = "features", value_enum, default_value_t = FeatureSet::Egemaps)]
    set: FeatureSet,
    /// Window length in seconds, or "whole" for one vector per file.
    #[arg(long, default_value = "whole", value_parser = cli::parse_window)]
    window: cli::WindowArg,
    /// Hop between windows in seconds (default: the window length, no overlap).
    #[arg(long)]
    hop: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
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
    stdin: cli::StdinArgs,
}

fn main() -> ExitCode {
    // A bug, ours or a library's, is reported in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        if serd::contain::is_contained() {
            return; // handled where it happened (a decoder's panic on a bad file)
        }
        serd::logging::write_stderr(&format!(
            "serd: error: internal error (please report it): {}\n",
            info.to_string().replace('\n', " ")
        ));
    }));
    let cli = Cli::parse();
    serd::logging::init(cli.verbose, cli.quiet);
    serd::audio::decode::set_strict(cli.strict);
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Listen(args) => cli::listen::run(args),
        Command::Devices(args) => cli::listen::devices(args),
        Command::Extract(args) => extract(args),
        Command::Train(args) => cli::train::run(args).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => cli::eval::run(args).map(|()| ExitCode::SUCCESS),
        Command::Predict(args) => cli::predict::run(args),
    }
}

fn extract(args: ExtractArgs) -> anyhow::Result<ExitCode> {
    args.stdin.apply();
    let windowing = cli::windowing(args.window, args.hop)?;
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes as one message (the logger keeps it on one line); a cause already
/// quoted by the message before it (typed errors often include their source) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line
}
