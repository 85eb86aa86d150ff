//! serd: speech emotion recognition from openSMILE functionals.
//!
//! Layering: imports point down only, and the modules named on one line do not import each other
//! unless an arrow says so (`src/cli/`, the `serd` binary, sits on top and may use them all):
//! - [`serve`] → [`pipeline`] (`serd listen`: capture, resampling, functionals, inference, events);
//! - [`train`] → [`dataset`] (corpora → cached features, clean and under simulated conditions),
//!   [`folds`], [`metrics`]; [`plot`] (the PNG figures) → [`metrics`], [`calibration`];
//! - [`pipeline`] → [`utterance`] (stretches of speech, judged as a file is) → [`inference`];
//! - [`pipeline`], [`train`] → [`inference`] (windows → probabilities, a file's verdict) →
//!   [`model_dir`] (model directories) → [`model`], [`scaler`], [`calibration`];
//! - [`dataset`] → [`cache`], [`corpus`], [`conditions`]; [`model_dir`], [`cache`] → [`extract`]
//!   (files → features) → [`features`] (openSMILE and its front end), [`conditions`] (the
//!   recording-conditions simulator) → [`audio`]; [`features`], [`cache`] → [`opensmile`];
//!   [`metrics`] → [`corpus`] (its `Skipped`);
//! - underneath everything: [`labels`], [`clock`], [`rng`], [`files`], [`dirs`], [`contain`], [`bundled`],
//!   [`backend`] → [`quiet`], and [`choice`]: enums chosen by name implement
//!   [`choice::Choice`], which the command line builds its options from, so the library does not
//!   depend on the command-line parser.
#![deny(unsafe_code)]

pub mod audio;
pub mod backend;
pub mod bundled;
pub mod cache;
pub mod calibration;
pub mod choice;
pub mod clock;
pub mod conditions;
pub mod contain;
pub mod corpus;
pub mod dataset;
pub mod dirs;
pub mod extract;
pub mod features;
pub mod files;
pub mod folds;
#[cfg(test)]
mod fuzz;
pub mod inference;
pub mod labels;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod model_dir;
pub mod opensmile;
pub mod pipeline;
pub mod plot;
pub mod quiet;
pub mod rng;
pub mod scaler;
pub mod serve;
pub mod train;
pub mod utterance;
