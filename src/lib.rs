//! serd: speech emotion recognition from openSMILE functionals.
//!
//! Layering (imports point down only): the `serd` binary → [`pipeline`], [`train`] →
//! [`predict`] → [`model`], [`scaler`]; [`pipeline`] → [`features`], [`audio`];
//! [`train`] → [`cache`] → [`extract`] → [`features`] → [`audio`], [`opensmile`];
//! [`corpus`], [`folds`], [`metrics`] → [`labels`]; [`cache`], [`features`] → [`files`].
#![deny(unsafe_code)]

pub mod audio;
pub mod backend;
pub mod cache;
pub mod calibration;
pub mod conditions;
pub mod contain;
pub mod corpus;
pub mod dataset;
pub mod dirs;
pub mod extract;
pub mod features;
pub mod files;
pub mod folds;
pub mod labels;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod opensmile;
pub mod pipeline;
pub mod predict;
pub mod quiet;
pub mod rng;
pub mod scaler;
pub mod train;
