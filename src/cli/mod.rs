//! The subcommands of the `serd` binary, and what they share.

pub mod card;
pub mod eval;
pub mod extract;
pub mod listen;
pub mod metrics_file;
pub mod predict;
pub mod train;

use std::path::PathBuf;

use anyhow::{bail, Context};
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
    /// Tells the decoder how to read stdin.
    pub fn apply(&self) {
        use serd::audio::decode::{set_stdin_raw, RawEncoding, RawPcm};
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
        set_stdin_raw(raw);
    }
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
            out.push(s.parse().with_context(|| format!("{flag} {s:?}"))?);
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
        (WindowArg::Whole, Some(_)) => bail!("--hop needs --window SECONDS"),
        (WindowArg::Seconds(w), hop) => Windowing::sliding(w, hop.unwrap_or(w))?,
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
