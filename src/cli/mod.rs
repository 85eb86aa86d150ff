//! Subcommands of the `serd` binary beyond `extract`, and what they share.

pub mod card;
pub mod eval;
pub mod listen;
pub mod predict;
pub mod train;

use std::path::PathBuf;

use anyhow::bail;
use serd::features::Windowing;

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

/// The bundled model: `models/default` of the source tree serd was built from.
pub fn default_model() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models/default"))
}
