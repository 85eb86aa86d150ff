//! The subcommands of the `serd` binary, and what they share.

pub mod eval;
pub mod extract;
pub mod listen;

pub mod predict;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serd::audio::decode::DecodeOptions;
use serd::choice::Choice;
use serd::conditions::Condition;
use serd::features::Windowing;

/// A parser for a library enum chosen by name ([`Choice`]): its names are the possible values,
/// each with its description in `--help`, as clap's own value enums show them.
pub fn choice<T: Choice>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        T::ALL
            .iter()
            .map(|(_, name, help)| PossibleValue::new(*name).help(*help)),
    )
    .map(|name| T::from_name(&name).expect("clap checked the name"))
}

/// How `-` (stdin) is read when it carries raw PCM rather than an encoded stream.
#[derive(clap::Args)]
pub struct StdinArgs {
    /// With `-` as the input: stdin holds raw PCM in this encoding (little-endian, interleaved),
    /// not a WAV/FLAC/Ogg/MP3 stream; needs --rate (and --channels when not mono).
    #[arg(long, value_enum, value_name = "ENCODING", requires = "rate")]
    raw: Option<RawArg>,
    /// Sample rate of the raw PCM on stdin, Hz.
    #[arg(long, value_name = "HZ", requires = "raw",
          value_parser = clap::value_parser!(u32).range(1000..=768_000))]
    rate: Option<u32>,
    /// Channels of the raw PCM on stdin (averaged to mono).
    #[arg(long, value_name = "N", requires = "raw", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    channels: u16,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RawArg {
    /// 16-bit signed integers (`arecord -f S16_LE`, `ffmpeg -f s16le`).
    S16le,
    /// 24-bit signed integers in 3 bytes.
    S24le,
    /// 32-bit signed integers.
    S32le,
    /// 32-bit floats.
    F32le,
}

impl StdinArgs {
    /// How the decoder is to read the command's `inputs`: stdin as these flags say, and damaged
    /// files as `strict` (`--strict`) says. Raw PCM is refused when stdin is not among the
    /// inputs (a file's own header says what it holds).
    pub fn decode_options(
        &self,
        inputs: &[PathBuf],
        strict: bool,
    ) -> anyhow::Result<DecodeOptions> {
        use serd::audio::decode::{RawEncoding, RawPcm, STDIN};
        if self.raw.is_some() && !inputs.iter().any(|i| i.as_path() == Path::new(STDIN)) {
            usage!("--raw describes stdin, and `-` is not among the inputs");
        }
        let raw = self.raw.zip(self.rate).map(|(encoding, rate)| RawPcm {
            encoding: match encoding {
                RawArg::S16le => RawEncoding::S16le,
                RawArg::S24le => RawEncoding::S24le,
                RawArg::S32le => RawEncoding::S32le,
                RawArg::F32le => RawEncoding::F32le,
            },
            rate,
            channels: self.channels,
        });
        Ok(DecodeOptions {
            strict,
            raw_stdin: raw,
        })
    }
}

/// How the decoder is to read files, for a command that does not read raw PCM: damaged files as
/// `strict` (`--strict`) says.
pub fn decode_options(strict: bool) -> DecodeOptions {
    DecodeOptions {
        strict,
        raw_stdin: None,
    }
}

/// A command-line value that parses but is not allowed (`--folds 0`, `--condition hiss:10`):
/// exit status 2, the same as the values clap itself refuses, so that every mistake on the
/// command line is told apart from a failure while working (status 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Returns early with a [`Usage`] error of this message (format! arguments).
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::cli::Usage(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// Whether `e` is a [`Usage`] error, or caused by one.
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Usage>())
}

/// `-` (stdin) at most once among `files`: two readers would split one stream between them.
pub fn stdin_once(files: &[PathBuf]) -> anyhow::Result<()> {
    let stdin = Path::new(serd::audio::decode::STDIN);
    if files.iter().filter(|f| f.as_path() == stdin).count() > 1 {
        usage!("`-` (stdin) can be given only once: there is one stream to read");
    }
    Ok(())
}

/// Writes `value` as one JSON line on stdout and flushes it; a failed write (a full disk,
/// `>/dev/full`) is an error that says so.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let line = serde_json::to_string(value)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// What `--condition standard` (eval) and `--test-condition standard` (train) stand for: the
/// conditions serd's README reports for the bundled model.
pub const STANDARD_CONDITIONS: [&str; 6] = [
    "white:10",
    "babble:10",
    "reverb:0.6",
    "telephone",
    "gain:-30",
    "rate:48000",
];

/// Condition specs from the command line, `standard` expanded ([`STANDARD_CONDITIONS`]).
pub fn conditions(specs: &[String], flag: &str) -> anyhow::Result<Vec<Condition>> {
    let mut out = Vec::new();
    for spec in specs {
        let list: Vec<&str> = if spec == "standard" {
            STANDARD_CONDITIONS.to_vec()
        } else {
            vec![spec.as_str()]
        };
        for s in list {
            match s.parse() {
                // Asked twice (`standard` and one of its own): measured and reported once.
                Ok(condition) if out.contains(&condition) => {}
                Ok(condition) => out.push(condition),
                Err(e) => usage!("{flag} {s:?}: {e}"),
            }
        }
    }
    Ok(out)
}

/// `--window`: seconds, or "whole".
#[derive(Clone, Copy)]
pub enum WindowArg {
    Whole,
    Seconds(f64),
}

pub fn parse_window(s: &str) -> Result<WindowArg, String> {
    if s == "whole" {
        return Ok(WindowArg::Whole);
    }
    s.parse::<f64>()
        .map(WindowArg::Seconds)
        .map_err(|_| format!("expected seconds or \"whole\", not {s:?}"))
}

/// `--window` and `--hop` together (hop defaults to the window).
pub fn windowing(window: WindowArg, hop: Option<f64>) -> anyhow::Result<Windowing> {
    Ok(match (window, hop) {
        (WindowArg::Whole, None) => Windowing::Whole,
        (WindowArg::Whole, Some(_)) => usage!("--hop needs --window SECONDS"),
        (WindowArg::Seconds(w), hop) => match Windowing::sliding(w, hop.unwrap_or(w)) {
            Ok(windowing) => windowing,
            Err(e) => usage!("{e}"),
        },
    })
}

/// The model directory asked for, or the bundled model (`models/default`, carried in the binary
/// and unpacked to the cache folder on first use).
pub fn model_dir(asked: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match asked {
        Some(dir) => Ok(dir),
        None => serd::bundled::model_dir().with_context(|| {
            format!(
                "{}: cannot unpack the bundled model",
                serd::dirs::cache_root().display()
            )
        }),
    }
}
