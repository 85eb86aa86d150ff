//! Audio in: decoding files to mono samples ([`decode`]) and resampling to 16 kHz ([`resample`]).

pub mod decode;
pub mod resample;
