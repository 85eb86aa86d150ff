//! What the chain's stages and the supervisor say to each other: how a stage passes a message
//! on ([`Pace`], [`Sent`]), the stages' names ([`Stage`]) and their reports ([`Status`],
//! [`StageError`]). A leaf module: the stages import it downward, and it imports no stage.

use std::io;

use crossbeam_channel::{Sender, TrySendError};

use super::events::End;
use crate::audio::decode::DecodeError;
use crate::audio::resample::ResampleError;
use crate::features;

/// What a stage does when the next one is behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Real-time input: drop the message (the caller counts it) rather than fall behind.
    Live,
    /// Replay as fast as possible: wait.
    Fast,
}

/// What became of a message passed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// The next stage was behind (live input only); the caller counts it.
    Dropped,
    /// The next stage is gone.
    Gone,
}

impl Pace {
    pub fn send<T>(self, tx: &Sender<T>, msg: T) -> Sent {
        let result = match self {
            Pace::Fast => tx.send(msg).map_err(|_| TrySendError::Disconnected(())),
            Pace::Live => tx.try_send(msg).map_err(|e| match e {
                TrySendError::Full(_) => TrySendError::Full(()),
                TrySendError::Disconnected(_) => TrySendError::Disconnected(()),
            }),
        };
        match result {
            Ok(()) => Sent::Delivered,
            Err(TrySendError::Full(())) => Sent::Dropped,
            Err(TrySendError::Disconnected(())) => Sent::Gone,
        }
    }
}

/// The parts of the chain, as named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Source,
    Resample,
    Features,
    Inference,
    Emitter,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Source => "audio input",
            Stage::Resample => "resampler",
            Stage::Features => "feature extraction",
            Stage::Inference => "inference",
            Stage::Emitter => "output",
        }
    }
}

/// What stages tell the supervisor.
#[derive(Debug)]
pub enum Status {
    Ready(Stage),
    Done(Stage),
    /// The emitter finished: the end event as written.
    Ended(End),
    /// stdout was closed by its reader.
    Closed,
    Failed(Stage, StageError),
}

/// Why a stage failed; shown after the stage's name.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error(transparent)]
    Features(#[from] features::Error),
    #[error("writing events: {0}")]
    Output(io::Error),
    #[error("the chain stopped")]
    Stopped,
    #[error("internal error (a panic; please report it)")]
    Panic,
}

/// Why a running source ended its stream early.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot start input device {device}: {reason}")]
    Start { device: String, reason: String },
    #[error(
        "input device {device} lost ({error}); could not reopen it within {within_s} s: {last}"
    )]
    Lost {
        device: String,
        error: String,
        within_s: u64,
        last: String,
    },
    /// A file or stream that could not be read to its end.
    #[error("{path}: {source}")]
    Replay { path: String, source: DecodeError },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn live_links_drop_when_full_and_fast_links_wait() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        assert_eq!(Pace::Live.send(&tx, 1), Sent::Delivered);
        assert_eq!(Pace::Live.send(&tx, 2), Sent::Dropped);
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let got: Vec<i32> = rx.iter().collect();
            got
        });
        // Waits until the reader makes room.
        assert_eq!(Pace::Fast.send(&tx, 3), Sent::Delivered);
        drop(tx);
        assert_eq!(reader.join().unwrap(), [1, 3]);
        let (tx, rx) = crossbeam_channel::bounded(1);
        drop(rx);
        assert_eq!(Pace::Live.send(&tx, 1), Sent::Gone);
        assert_eq!(Pace::Fast.send(&tx, 1), Sent::Gone);
    }
}
