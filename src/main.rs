//! The `serd` command line.

use std::io;
use std::process::ExitCode;

mod cli;

use clap::{Parser, Subcommand};

/// serd's version and the bundled model it carries.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SERD_MODEL"), ")");

/// serd: speech emotion recognition from openSMILE features.
///
/// openSMILE (vendored, audEERING research licence: non-commercial use only) computes the
/// eGeMAPSv02 or ComParE 2016 functionals that serd works on.
/// The heading of the options every command takes, apart from each command's own in its help.
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(name = "serd", version = VERSION, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// More messages on stderr (-v info, -vv debug, -vvv trace, openSMILE's own log included).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = GLOBAL)]
    verbose: u8,
    /// Errors only on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    quiet: bool,
    /// Damaged or truncated audio files are errors. Without it they are used as far as they
    /// decode, with a warning naming the file and how much was decoded.
    #[arg(long, global = true, help_heading = GLOBAL)]
    strict: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Listen(cli::listen::ListenArgs),
    Devices(cli::listen::DevicesArgs),
    Extract(cli::extract::ExtractArgs),
    Train(cli::train::TrainArgs),
    Eval(cli::eval::EvalArgs),
    Predict(cli::predict::PredictArgs),
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
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{}", one_line(&e));
            if cli::is_usage(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // `--strict` goes to the commands that decode audio: how they read it is theirs to say.
    let strict = cli.strict;
    match cli.command {
        Command::Listen(args) => cli::listen::run(args, strict),
        Command::Devices(args) => cli::listen::devices(args),
        Command::Extract(args) => cli::extract::run(args, strict),
        Command::Train(args) => cli::train::run(args, strict).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => cli::eval::run(args, strict).map(|()| ExitCode::SUCCESS),
        Command::Predict(args) => cli::predict::run(args, strict),
    }
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
