//! What `serd listen` listens to, and opening it: the microphone ([`super::mic`]) or a file
//! replayed through the same input link ([`super::replay`]), so that everything after the audio
//! callback is the same code. Both keep the contract of [`super::device`].

use std::path::PathBuf;

use crossbeam_channel::Sender;

pub use super::device::DeviceHandle;
use super::input::Writer;
use super::mic::{MicError, Microphone};
use super::replay::{Replay, ReplayError};
use super::status::Status;
use crate::audio::decode::DecodeOptions;

/// What `serd listen` listens to.
#[derive(Clone, Debug)]
pub enum AudioInput {
    /// An input device: the default one, or the first whose name or id contains the text, or
    /// the one with that index in `serd devices`.
    Mic { device: Option<String> },
    /// A file; `realtime` paces it at the speed it was recorded, otherwise it goes as fast as
    /// the chain takes it (and nothing is dropped). `decode` says how it is decoded.
    File {
        path: PathBuf,
        realtime: bool,
        decode: DecodeOptions,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AudioInputError {
    #[error(transparent)]
    Mic(#[from] MicError),
    #[error(transparent)]
    File(#[from] ReplayError),
}

/// Opens the source and starts its thread, which waits for the supervisor's start.
pub fn open(
    source: &AudioInput,
    writer: Writer,
    status: Sender<Status>,
) -> Result<DeviceHandle, AudioInputError> {
    Ok(match source {
        AudioInput::Mic { device } => Microphone {
            selector: device.clone(),
        }
        .open(writer, status)?,
        AudioInput::File {
            path,
            realtime,
            decode,
        } => Replay {
            path: path.clone(),
            realtime: *realtime,
            decode: *decode,
        }
        .open(writer, status)?,
    })
}
