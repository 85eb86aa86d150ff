//! A second way out of the chain besides stdout (`serd listen --serve`).
//!
//! The emitter hands every line it wrote to the tap, and the resampler stage the input level ten
//! times a second. A tap must return at once: it runs on the chain's threads, so anything slow
//! (a network client) sits behind a bounded queue of its own, dropping rather than waiting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::events::Event;
use crate::features::SAMPLE_RATE;

pub trait Tap: Send + Sync {
    /// Where the tap can be reached; the `start` event names it as `serve`.
    fn address(&self) -> String;
    /// Called once, before the source starts, with the chain's running counts.
    fn attach(&self, counters: Arc<Counters>);
    /// An event as written to stdout (`line` without its newline).
    fn event(&self, event: &Event, line: &str);
    /// The input level over the last [`Meter::PERIOD_S`] of stream audio, ending at `t` s.
    fn level(&self, t: f64, dbfs: f32);
}

/// What the chain has dropped so far, readable while it runs (the `end` event has the totals).
#[derive(Debug)]
pub struct Counters {
    windows_dropped: AtomicU64,
    audio_dropped_us: Arc<AtomicU64>,
    /// Since when (ms after `base`, plus one; 0: not waiting) the emitter has been waiting for
    /// stdout's reader to take a line.
    stdout_waiting_ms: AtomicU64,
    base: Instant,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters::new(Arc::default())
    }
}

impl Counters {
    /// Counts over the input link's dropped-audio counter.
    pub(super) fn new(audio_dropped_us: Arc<AtomicU64>) -> Counters {
        Counters {
            windows_dropped: AtomicU64::new(0),
            audio_dropped_us,
            stdout_waiting_ms: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    /// The emitter starts (`true`) or ends (`false`) writing a line to stdout.
    pub(super) fn writing_stdout(&self, writing: bool) {
        let since = if writing {
            self.base.elapsed().as_millis() as u64 + 1
        } else {
            0
        };
        self.stdout_waiting_ms.store(since, Ordering::Relaxed);
    }

    /// How long the line being written to stdout has been waiting for stdout's reader, seconds
    /// (0 when none is): a reader that takes nothing (`serd listen --serve | less`, paused)
    /// holds the stream for every way out, since the network carries stdout's lines.
    pub fn stdout_waiting_s(&self) -> f64 {
        match self.stdout_waiting_ms.load(Ordering::Relaxed) {
            0 => 0.0,
            since => {
                let now = self.base.elapsed().as_millis() as u64 + 1;
                now.saturating_sub(since) as f64 / 1e3
            }
        }
    }

    pub(super) fn drop_window(&self) {
        self.windows_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Windows dropped because a later stage was behind.
    pub fn windows_dropped(&self) -> u64 {
        self.windows_dropped.load(Ordering::Relaxed)
    }

    /// Seconds of device audio dropped before resampling.
    pub fn audio_dropped_s(&self) -> f64 {
        self.audio_dropped_us.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// The level of the 16 kHz stream, reported to a tap every [`Meter::PERIOD_S`] of audio.
pub struct Meter {
    tap: Arc<dyn Tap>,
    samples: u64,
    sum_sq: f64,
    n: u32,
}

impl Meter {
    pub const PERIOD_S: f64 = 0.1;
    const PERIOD: u32 = SAMPLE_RATE / 10;

    pub fn new(tap: Arc<dyn Tap>) -> Meter {
        Meter {
            tap,
            samples: 0,
            sum_sq: 0.0,
            n: 0,
        }
    }

    pub fn feed(&mut self, samples: &[f32]) {
        for &x in samples {
            self.sum_sq += f64::from(x) * f64::from(x);
            self.n += 1;
            self.samples += 1;
            if self.n == Self::PERIOD {
                let t = self.samples as f64 / f64::from(SAMPLE_RATE);
                self.tap.level(t, dbfs(self.sum_sq / f64::from(self.n)));
                self.sum_sq = 0.0;
                self.n = 0;
            }
        }
    }
}

/// Mean square → dB relative to full scale (a full-scale square wave is 0 dB), floored at −120.
fn dbfs(mean_square: f64) -> f32 {
    (10.0 * mean_square.max(1e-12).log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Levels(Mutex<Vec<(f64, f32)>>);

    impl Tap for Levels {
        fn address(&self) -> String {
            String::new()
        }
        fn attach(&self, _: Arc<Counters>) {}
        fn event(&self, _: &Event, _: &str) {}
        fn level(&self, t: f64, dbfs: f32) {
            self.0.lock().unwrap().push((t, dbfs));
        }
    }

    #[test]
    fn the_meter_reports_every_tenth_of_a_second_of_stream_audio() {
        let levels = Arc::new(Levels::default());
        let mut meter = Meter::new(levels.clone());
        // 0.25 s of a half-scale square wave in uneven blocks, then 0.1 s of digital silence.
        let square: Vec<f32> = (0..4000)
            .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        for block in square.chunks(999) {
            meter.feed(block);
        }
        meter.feed(&[0.0; 1600]);
        let got = levels.0.lock().unwrap().clone();
        let times: Vec<f64> = got.iter().map(|l| l.0).collect();
        assert_eq!(times, [0.1, 0.2, 0.3]);
        // −6.02 dB for half scale; the third period is half square, half silence: −3 dB more.
        assert!((got[0].1 + 6.0206).abs() < 1e-3, "{got:?}");
        assert!((got[2].1 - (got[0].1 - 3.0103)).abs() < 1e-3, "{got:?}");
        meter.feed(&[0.0; 1600]);
        assert_eq!(levels.0.lock().unwrap()[3].1, -120.0);
    }

    #[test]
    fn counters_read_the_links_and_count_dropped_windows() {
        let audio = Arc::new(AtomicU64::new(1_500_000));
        let counters = Counters::new(audio.clone());
        counters.drop_window();
        counters.drop_window();
        assert_eq!(counters.windows_dropped(), 2);
        assert_eq!(counters.audio_dropped_s(), 1.5);
    }
}
