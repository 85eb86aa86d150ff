//! serd: speech emotion recognition from openSMILE functionals.
//!
//! Layering (imports point down only): the `serd` binary → [`extract`] → [`features`] →
//! [`audio`], [`opensmile`].
#![deny(unsafe_code)]

pub mod audio;
pub mod extract;
pub mod features;
pub mod logging;
pub mod opensmile;
