//! The first link of the chain: blocks of interleaved samples from the audio callback (or the
//! file replay standing in for it) to the resampler thread.
//!
//! The audio callback must never block, lock or allocate. Its blocks therefore come from a fixed
//! pool of buffers allocated up front that circulate between two bounded channels: the
//! [`Writer`] takes a free buffer (`try_recv`), copies the device's samples into it (within its
//! capacity: no allocation) and `try_send`s it on; the resampler thread hands it back through
//! [`Input::recycle`]. When no buffer is free, because the chain behind is slower than the
//! device, the samples are dropped and counted, and memory stays what it was.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

/// Samples (not frames) one pooled buffer holds.
pub const BUFFER_SAMPLES: usize = 4096;
/// Buffers in the pool. Every device callback takes at least one, however short its period, so
/// this is 64 periods in flight: 0.34–1.4 s at 48 kHz with the usual 256–1024-frame periods
/// (2.7 s at most, for stereo periods that fill a buffer). Beyond that, audio is dropped and
/// counted.
pub const POOL: usize = 64;
/// How often the resampler thread looks for blocks when there are none.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// Interleaved samples as the device delivered them, converted to f32.
#[derive(Debug)]
pub struct Block {
    pub samples: Vec<f32>,
    pub channels: u16,
    pub rate: u32,
    /// When the block's last sample reached serd.
    pub arrived: Instant,
}

/// One message per link, with an explicit end of stream.
#[derive(Debug)]
pub enum InputMsg {
    Block(Block),
    End,
}

/// The producing end: cheap to clone, used by the audio callback and by the file replay.
#[derive(Clone)]
pub struct Writer {
    free: Receiver<Vec<f32>>,
    full: Sender<InputMsg>,
    dropped_us: Arc<AtomicU64>,
    channels: u16,
    rate: u32,
}

/// The consuming end, owned by the resampler thread.
pub struct Input {
    full: Receiver<InputMsg>,
    free: Sender<Vec<f32>>,
    dropped_us: Arc<AtomicU64>,
}

/// A new link with its pool of `POOL` buffers.
pub fn link() -> (Writer, Input) {
    let (free_tx, free_rx) = crossbeam_channel::bounded(POOL);
    for _ in 0..POOL {
        free_tx
            .send(Vec::with_capacity(BUFFER_SAMPLES))
            .expect("the pool has room for every buffer");
    }
    // One more slot than buffers, for the end of stream.
    let (full_tx, full_rx) = crossbeam_channel::bounded(POOL + 1);
    let dropped_us = Arc::new(AtomicU64::new(0));
    (
        Writer {
            free: free_rx,
            full: full_tx,
            dropped_us: dropped_us.clone(),
            channels: 1,
            rate: 1,
        },
        Input {
            full: full_rx,
            free: free_tx,
            dropped_us,
        },
    )
}

/// The resampler thread is gone: nothing more can be delivered.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

impl Writer {
    /// This writer for a stream of `channels` interleaved channels at `rate` Hz.
    pub fn with_format(&self, channels: u16, rate: u32) -> Writer {
        Writer {
            channels: channels.max(1),
            rate: rate.max(1),
            ..self.clone()
        }
    }

    /// Real-time delivery (the audio callback): never blocks, locks or allocates; what finds no
    /// free buffer is dropped and counted.
    pub fn write<T: Copy>(&self, data: &[T], to_f32: impl Fn(T) -> f32) -> Result<(), Closed> {
        self.deliver(data, to_f32, false)
    }

    /// Paced-by-the-consumer delivery (a file replayed as fast as possible): waits for a free
    /// buffer instead of dropping.
    pub fn write_waiting<T: Copy>(
        &self,
        data: &[T],
        to_f32: impl Fn(T) -> f32,
    ) -> Result<(), Closed> {
        self.deliver(data, to_f32, true)
    }

    fn deliver<T: Copy>(
        &self,
        data: &[T],
        to_f32: impl Fn(T) -> f32,
        wait: bool,
    ) -> Result<(), Closed> {
        let channels = usize::from(self.channels);
        // Whole frames per buffer.
        let per_buffer = (BUFFER_SAMPLES / channels).max(1) * channels;
        for piece in data.chunks(per_buffer) {
            let buffer = if wait {
                self.free.recv().map_err(|_| Closed)?
            } else {
                match self.free.try_recv() {
                    Ok(buffer) => buffer,
                    Err(_) => {
                        self.count_drop(piece.len() / channels);
                        continue;
                    }
                }
            };
            let mut samples = buffer;
            samples.clear();
            samples.extend(piece.iter().map(|&s| to_f32(s)));
            let block = Block {
                samples,
                channels: self.channels,
                rate: self.rate,
                arrived: Instant::now(),
            };
            // The channel has room for every pooled buffer: it is never full while we hold one.
            match self.full.try_send(InputMsg::Block(block)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => self.count_drop(piece.len() / channels),
                Err(TrySendError::Disconnected(_)) => return Err(Closed),
            }
        }
        Ok(())
    }

    fn count_drop(&self, frames: usize) {
        let us = frames as u64 * 1_000_000 / u64::from(self.rate);
        self.dropped_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Ends the stream (from a source's control thread, never from the callback).
    pub fn end(&self) {
        // An error means the resampler thread is gone already.
        let _ = self.full.send(InputMsg::End);
    }
}

impl Input {
    /// The next block or the end; `None` once every writer is gone without an end.
    ///
    /// Polls rather than sleeping on the channel: when a receiver sleeps on a crossbeam channel,
    /// the sender takes a lock and makes a system call to wake it, and the sender here is the
    /// audio callback. Polling keeps its `try_send` to a few atomic operations, at the cost of
    /// up to [`POLL`] of extra latency.
    pub fn recv(&self) -> Option<InputMsg> {
        loop {
            match self.full.try_recv() {
                Ok(msg) => return Some(msg),
                Err(TryRecvError::Empty) => std::thread::sleep(POLL),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
    }

    /// Returns a block's buffer to the pool.
    pub fn recycle(&self, block: Block) {
        // The pool has room for every buffer; a closed pool (writers gone) just frees it.
        let _ = self.free.try_send(block.samples);
    }

    /// The count behind [`Input::dropped_s`], in microseconds, for readers elsewhere.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped_us.clone()
    }

    /// Seconds of audio dropped so far because no buffer was free.
    pub fn dropped_s(&self) -> f64 {
        self.dropped_us.load(Ordering::Relaxed) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(input: &Input) -> Vec<Block> {
        let mut out = Vec::new();
        while let Ok(InputMsg::Block(b)) = input.full.try_recv() {
            out.push(b);
        }
        out
    }

    #[test]
    fn blocks_hold_whole_frames_and_convert_samples() {
        let (writer, input) = link();
        let writer = writer.with_format(3, 48_000);
        let data: Vec<i16> = (0..(BUFFER_SAMPLES as i16 + 30)).collect();
        writer.write(&data, |s| f32::from(s) / 32768.0).unwrap();
        let got = blocks(&input);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].samples.len(), BUFFER_SAMPLES / 3 * 3);
        assert_eq!(got[0].samples.len() + got[1].samples.len(), data.len());
        assert_eq!((got[1].channels, got[1].rate), (3, 48_000));
        assert_eq!(got[0].samples[2], 2.0 / 32768.0);
        // Buffers never outgrow the capacity they were allocated with.
        assert!(got.iter().all(|b| b.samples.capacity() == BUFFER_SAMPLES));
    }

    #[test]
    fn a_full_pool_drops_and_counts_instead_of_blocking() {
        let (writer, input) = link();
        let writer = writer.with_format(1, 16_000);
        let block = vec![0.5f32; 1600];
        for _ in 0..POOL + 10 {
            writer.write(&block, |s| s).unwrap();
        }
        // 10 blocks of 0.1 s found no free buffer.
        assert!((input.dropped_s() - 1.0).abs() < 1e-9);
        let got = blocks(&input);
        assert_eq!(got.len(), POOL);
        // Recycled buffers are used again.
        for b in got {
            input.recycle(b);
        }
        writer.write(&block, |s| s).unwrap();
        assert_eq!(blocks(&input).len(), 1);
        assert!((input.dropped_s() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_closed_consumer_is_reported() {
        let (writer, input) = link();
        drop(input);
        let writer = writer.with_format(1, 16_000);
        assert_eq!(writer.write(&[0.0f32; 10], |s| s), Err(Closed));
    }
}
