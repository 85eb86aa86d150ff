//! Where audio comes from: the microphone (see [`super::mic`]) or a file replayed through the
//! same input link, so that everything after the audio callback is the same code.
//!
//! A source runs on its own thread and waits for [`Control::Start`] (the supervisor sends it once
//! every stage is ready); [`Control::Stop`] or the end of the file ends the stream.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::input::Writer;
use super::mic::{self, MicError};
use super::{Stage, Status};
use crate::audio::decode::{AudioFile, DecodeError, STDIN};

/// What `serd listen` listens to.
#[derive(Clone, Debug)]
pub enum Source {
    /// An input device: the default one, or the first whose name or id contains the text, or
    /// the one with that index in `serd devices`.
    Mic { device: Option<String> },
    /// A file; `realtime` paces it at the speed it was recorded, otherwise it goes as fast as
    /// the chain takes it (and nothing is dropped).
    File { path: PathBuf, realtime: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Mic(#[from] MicError),
    #[error("{}: {source}", .path.display())]
    File { path: PathBuf, source: DecodeError },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Start,
    Stop,
}

/// A running source.
pub struct SourceHandle {
    /// `mic:NAME` or `file:PATH`.
    pub name: String,
    /// Sample rate of the device or file.
    pub rate: u32,
    /// Whether the source delivers in real time (and so drops rather than waits).
    pub live: bool,
    control: Sender<Control>,
    thread: JoinHandle<()>,
}

impl SourceHandle {
    pub(super) fn new(
        name: String,
        rate: u32,
        live: bool,
        control: Sender<Control>,
        thread: JoinHandle<()>,
    ) -> SourceHandle {
        SourceHandle {
            name,
            rate,
            live,
            control,
            thread,
        }
    }

    pub fn start(&self) {
        let _ = self.control.try_send(Control::Start);
    }

    /// Asks the source to end the stream (it sends the end of stream down the chain).
    pub fn stop(&self) {
        let _ = self.control.try_send(Control::Stop);
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Opens the source and starts its thread, which waits for [`Control::Start`].
pub fn open(
    source: &Source,
    writer: Writer,
    status: Sender<Status>,
) -> Result<SourceHandle, SourceError> {
    match source {
        Source::Mic { device } => Ok(mic::open(device.as_deref(), writer, status)?),
        Source::File { path, realtime } => open_file(path, *realtime, writer, status),
    }
}

fn open_file(
    path: &Path,
    realtime: bool,
    writer: Writer,
    status: Sender<Status>,
) -> Result<SourceHandle, SourceError> {
    let file_error = |source| SourceError::File {
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
            writer.end();
            let status_msg = match result {
                Ok(()) => Status::Done(Stage::Source),
                Err(e) => Status::Failed(Stage::Source, format!("{shown}: {e}")),
            };
            let _ = status.send(status_msg);
        })
        .expect("spawning a thread");
    Ok(SourceHandle::new(
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
