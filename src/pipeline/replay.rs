//! The file replay: an audio file (or a stream on stdin) delivered through the input link like a
//! microphone's blocks, in real time or as fast as the chain takes them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use super::device::{Control, DeviceHandle};
use super::input::Writer;
use super::status::{SourceError, Stage, Status};
use crate::audio::decode::{AudioFile, DecodeError, DecodeOptions, STDIN};

/// A file; `realtime` paces it at the speed it was recorded, otherwise it goes as fast as the
/// chain takes it (and nothing is dropped). `decode` says how it is decoded.
pub struct Replay {
    pub path: PathBuf,
    pub realtime: bool,
    pub decode: DecodeOptions,
}

/// A file that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", .path.display())]
pub struct ReplayError {
    pub path: PathBuf,
    pub source: DecodeError,
}

impl Replay {
    /// Opens the file (so that its rate is known and errors come at once) and starts the replay
    /// thread, which reads on [`Control::Start`].
    pub fn open(self, writer: Writer, status: Sender<Status>) -> Result<DeviceHandle, ReplayError> {
        open_file(&self, writer, status)
    }
}

fn open_file(
    asked: &Replay,
    writer: Writer,
    status: Sender<Status>,
) -> Result<DeviceHandle, ReplayError> {
    let (path, realtime) = (asked.path.as_path(), asked.realtime);
    let file_error = |source| ReplayError {
        path: path.to_path_buf(),
        source,
    };
    let file = AudioFile::open(path, asked.decode).map_err(file_error)?;
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
                Err(source) => Status::Failed(
                    Stage::Source,
                    SourceError::Replay {
                        path: shown,
                        source,
                    }
                    .into(),
                ),
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
    file: AudioFile,
    writer: Writer,
    realtime: bool,
    control: &Receiver<Control>,
) -> Result<(), DecodeError> {
    if control.recv() != Ok(Control::Start) {
        return Ok(());
    }
    let rate = file.rate();
    let block = ((f64::from(rate) * BLOCK_S).round() as usize).max(1);
    // The file is read on a thread of its own, so that a stop is heard while a read blocks (a
    // stream that stalled, raw input that never comes, a FIFO whose writer went quiet): this
    // thread then ends the stream at once, and the reader, blocked in the kernel, is left to the
    // end of the process (it ends by itself at its next read, finding nobody to take it).
    let (blocks_tx, blocks) = crossbeam_channel::bounded(4);
    std::thread::Builder::new()
        .name("serd-read".into())
        .spawn(move || read_blocks(file, block, &blocks_tx))
        .expect("spawning a thread");
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        let samples: Vec<f32> = select! {
            recv(control) -> msg => match msg {
                Ok(Control::Stop) | Err(_) => return Ok(()),
                Ok(Control::Start) => continue,
            },
            recv(blocks) -> msg => match msg {
                Ok(Ok(samples)) => samples,
                Ok(Err(e)) => return Err(e),
                // The reader is done: the end of the file.
                Err(_) => return Ok(()),
            },
        };
        let n = samples.len();
        if realtime {
            // Deliver each block when its last sample would have been recorded.
            let due = started + Duration::from_secs_f64((sent + n as u64) as f64 / f64::from(rate));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let delivered = if realtime {
            writer.write(&samples, |s| s)
        } else {
            writer.write_waiting(&samples, |s| s)
        };
        if delivered.is_err() {
            return Ok(());
        }
        sent += n as u64;
    }
}

/// Reads `file` in blocks of `block` samples (the last one shorter) into `out`; an error is the
/// last message, and the channel's closing the end of the file.
fn read_blocks(mut file: AudioFile, block: usize, out: &Sender<Result<Vec<f32>, DecodeError>>) {
    let mut buffer = Vec::with_capacity(4 * block);
    let mut more = true;
    while more || !buffer.is_empty() {
        while more && buffer.len() < block {
            more = match file.read(&mut buffer) {
                Ok(more) => more,
                Err(e) => {
                    let _ = out.send(Err(e));
                    return;
                }
            };
        }
        let n = block.min(buffer.len());
        if out.send(Ok(buffer.drain(..n).collect())).is_err() {
            return;
        }
    }
}
