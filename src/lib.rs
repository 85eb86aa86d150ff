//! serd: speech emotion recognition from openSMILE functionals.
//!
//! Layering (imports point down only): the `serd` binary → [`pipeline`], [`train`] →
//! [`dataset`] (corpora → cached features, clean and under simulated conditions) → [`predict`]
//! → [`model`], [`scaler`], [`calibration`]; [`pipeline`] → [`features`], [`audio`];
//! [`dataset`] → [`cache`] → [`extract`] → [`features`] (openSMILE and its front end),
//! [`conditions`] (the recording-conditions simulator) → [`audio`], [`opensmile`];
//! [`metrics`] → [`corpus`] (its `Skipped`); [`corpus`], [`folds`], [`metrics`] →
//! [`calibration`], [`labels`]; [`cache`], [`features`], [`bundled`] → [`files`]; [`conditions`],
//! [`folds`], [`features`] → [`rng`]. Enums chosen by name implement [`choice::Choice`], which the
//! command line builds its options from: the library does not depend on the command-line parser.
#![deny(unsafe_code)]

pub mod audio;
pub mod backend;
pub mod bundled;
pub mod cache;
pub mod calibration;
pub mod choice;
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
