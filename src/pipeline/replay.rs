//! The file replay: an audio file (or a stream on stdin) delivered through the input link like a
//! microphone's blocks, in real time or as fast as the chain takes them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::device::{CaptureDevice, Control, DeviceHandle};
use super::input::Writer;
use super::{Stage, Status};
use crate::audio::decode::{AudioFile, DecodeError, STDIN};

/// A file; `realtime` paces it at the speed it was recorded, otherwise it goes as fast as the
/// chain takes it (and nothing is dropped).
pub struct Replay {
    pub path: PathBuf,
    pub realtime: bool,
}

/// A file that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", .path.display())]
pub struct ReplayError {
    pub path: PathBuf,
    pub source: DecodeError,
}

impl CaptureDevice for Replay {
    type Error = ReplayError;

    fn open(self, writer: Writer, status: Sender<Status>) -> Result<DeviceHandle, ReplayError> {
        open_file(&self.path, self.realtime, writer, status)
    }
}

fn open_file(
    path: &Path,
    realtime: bool,
    writer: Writer,
    status: Sender<Status>,
) -> Result<DeviceHandle, ReplayError> {
    let file_error = |source| ReplayError {
        path: path.to_path_buf(),
        source,
    };
    let file = AudioFile::open(path).map_err(file_error)?;
    let rate = file.rate();
    // Control messages: a start and a stop at most.
    let (control_tx, control_rx) = crossbeam_channel::bounded(2);
    let shown = path.display().to_string();
    let thread = std::thread::Builder::new()
        .name("serd-replay".into())
        .spawn(move || {
            let result = replay(file, writer.with_format(1, rate), realtime, &control_rx);
            // The status first: a failure must reach the supervisor before the chain, drained
            // by the end of input, can report that it ended.
            let status_msg = match result {
                Ok(()) => Status::Done(Stage::Source),
                Err(e) => Status::Failed(Stage::Source, format!("{shown}: {e}")),
            };
            let _ = status.send(status_msg);
            writer.end();
        })
        .expect("spawning a thread");
    Ok(DeviceHandle::new(
        if path == Path::new(STDIN) {
            "stdin".to_string()
        } else {
            format!("file:{}", path.display())
        },
        rate,
        realtime,
        control_tx,
        thread,
    ))
}

/// Blocks of 10 ms, about what an audio callback delivers.
const BLOCK_S: f64 = 0.01;

fn replay(
    mut file: AudioFile,
    writer: Writer,
    realtime: bool,
    control: &Receiver<Control>,
) -> Result<(), DecodeError> {
    if control.recv() != Ok(Control::Start) {
        return Ok(());
    }
    let rate = file.rate();
    let block = ((f64::from(rate) * BLOCK_S).round() as usize).max(1);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buffer = Vec::with_capacity(4 * block);
    let mut more = true;
    while more || !buffer.is_empty() {
        match control.try_recv() {
            Ok(Control::Stop) | Err(TryRecvError::Disconnected) => return Ok(()),
            Ok(Control::Start) | Err(TryRecvError::Empty) => {}
        }
        while more && buffer.len() < block {
            more = file.read(&mut buffer)?;
        }
        let n = block.min(buffer.len());
        if realtime {
            // Deliver each block when its last sample would have been recorded.
            let due = started + Duration::from_secs_f64((sent + n as u64) as f64 / f64::from(rate));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let delivered = if realtime {
            writer.write(&buffer[..n], |s| s)
        } else {
            writer.write_waiting(&buffer[..n], |s| s)
        };
        if delivered.is_err() {
            return Ok(());
        }
        sent += n as u64;
        buffer.drain(..n);
    }
    Ok(())
}
