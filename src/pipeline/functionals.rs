//! The feature thread: 16 kHz audio → openSMILE's functionals per window.
//!
//! It waits on two things at once: the next audio chunk, and openSMILE's own output, so a window
//! is passed on the moment openSMILE completes it rather than with the next chunk. Each window
//! carries the arrival time of the input sample at its end, from which the emitter measures
//! latency.
//!
//! A stream that ends before its first window (a clip shorter than the model's window) is kept
//! in memory and becomes one window of all of it, the functionals over the whole clip: the
//! verdict `serd predict` gives such a file, rather than none.

use std::collections::VecDeque;
use std::time::Instant;

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};

use super::resample::AudioMsg;
use super::status::{Pace, Sent};
use super::tap::Counters;
use crate::extract::{Recipe, MIN_SECONDS};
use crate::features::{self, Extractor, Plans, Threads, Window, Windowing, SAMPLE_RATE};

/// Windows on their way to the inference thread.
#[derive(Debug)]
pub enum WindowMsg {
    Window {
        window: Window,
        /// When the input sample at `window.t_end` reached serd.
        arrived: Instant,
        /// Seconds of input beyond `t_end` that had arrived when openSMILE completed the window:
        /// the algorithmic delay of the resampler and openSMILE (plus the input's block size).
        delay_s: f64,
    },
    End(Totals),
}

/// What the stream amounted to, carried down with the end of stream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Windows openSMILE delivered.
    pub windows: u64,
    /// Seconds of stream audio (16 kHz samples that reached openSMILE).
    pub audio_s: f64,
    /// Seconds of device audio dropped before resampling.
    pub audio_dropped_s: f64,
}

/// Arrival times of stream positions, oldest first.
#[derive(Default)]
struct Arrivals(VecDeque<(f64, Instant)>);

impl Arrivals {
    fn record(&mut self, input_s: f64, arrived: Instant) {
        self.0.push_back((input_s, arrived));
    }

    /// Seconds of input received so far.
    fn latest(&self) -> f64 {
        self.0.back().map_or(0.0, |&(t, _)| t)
    }

    /// When stream second `t` arrived: the first record at or after it (the latest one when the
    /// stream ended before `t`). Older records are forgotten: windows end in increasing order.
    fn of(&mut self, t: f64) -> Instant {
        const EPS: f64 = 1e-9;
        while self.0.len() > 1 && self.0[0].0 + EPS < t {
            self.0.pop_front();
        }
        self.0.front().map_or_else(Instant::now, |&(_, at)| at)
    }
}

/// Runs until the end of the audio stream. `recipe` is the model's, which `extractor` was made
/// with (its plan from `plans`): a stream shorter than its window is judged by its functionals
/// over all of it.
pub fn run(
    mut extractor: Extractor,
    plans: &Plans,
    recipe: Recipe,
    audio: Receiver<AudioMsg>,
    out: Sender<WindowMsg>,
    pace: Pace,
    counters: &Counters,
) -> Result<(), features::Error> {
    let signal = extractor.output_signal();
    let mut select = Select::new();
    let audio_op = select.recv(&audio);
    let signal_op = select.recv(&signal);
    let mut arrivals = Arrivals::default();
    let mut totals = Totals::default();
    let mut samples = 0u64;
    let mut windows = Vec::new();
    let mut clip = ShortClip::new(recipe);
    let mut ended = false;
    while !ended {
        let op = select.ready();
        if op == signal_op {
            if signal.is_empty() {
                // openSMILE's side is gone (it only ends with an error before our end of input;
                // the next push reports it).
                select.remove(signal_op);
            }
            extractor.poll(&mut windows);
        } else if op == audio_op {
            match audio.try_recv() {
                Ok(AudioMsg::Chunk(chunk)) => {
                    arrivals.record(chunk.input_s, chunk.arrived);
                    samples += chunk.samples.len() as u64;
                    clip.record(&chunk.samples, totals.windows);
                    extractor.push(&chunk.samples, &mut windows)?;
                }
                Ok(AudioMsg::End { dropped_s }) => {
                    totals.audio_dropped_s = dropped_s;
                    ended = true;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => ended = true,
            }
        }
        if !deliver(
            &mut windows,
            &mut arrivals,
            &out,
            pace,
            &mut totals,
            counters,
        ) {
            return Ok(());
        }
    }
    extractor.finish(&mut windows)?;
    if windows.is_empty() && totals.windows == 0 {
        clip.judge(recipe, plans, &mut windows)?;
    }
    deliver(
        &mut windows,
        &mut arrivals,
        &out,
        pace,
        &mut totals,
        counters,
    );
    totals.audio_s = samples as f64 / f64::from(SAMPLE_RATE);
    let _ = out.send(WindowMsg::End(totals));
    Ok(())
}

/// The stream's first samples, kept while it may still end before its first window, so that a
/// stream shorter than a window is judged by its functionals over all of it, as `predict` judges
/// such a file.
struct ShortClip {
    /// Samples kept at most: a window, and a second more for the resampler's and openSMILE's
    /// edges.
    keep: usize,
    /// `None` once the stream has outgrown it (or with whole-file windowing).
    samples: Option<Vec<f32>>,
}

impl ShortClip {
    fn new(recipe: Recipe) -> ShortClip {
        let keep = match recipe.windowing {
            Windowing::Sliding { window, .. } => ((window + 1.0) * f64::from(SAMPLE_RATE)) as usize,
            Windowing::Whole => 0,
        };
        ShortClip {
            keep,
            samples: (keep > 0).then(Vec::new),
        }
    }

    /// The stream's next samples, after `windows` windows came out of openSMILE.
    fn record(&mut self, samples: &[f32], windows: u64) {
        if let Some(start) = &mut self.samples {
            if windows > 0 || start.len() + samples.len() > self.keep {
                self.samples = None;
            } else {
                start.extend_from_slice(samples);
            }
        }
    }

    /// The stream ended without a window: one window of all of it, if it is long enough for
    /// openSMILE at all.
    fn judge(
        self,
        recipe: Recipe,
        plans: &Plans,
        windows: &mut Vec<Window>,
    ) -> Result<(), features::Error> {
        let long_enough = |s: &Vec<f32>| s.len() as f64 >= MIN_SECONDS * f64::from(SAMPLE_RATE);
        if let Some(clip) = self.samples.filter(long_enough) {
            let whole = Recipe {
                windowing: Windowing::Whole,
                ..recipe
            };
            let mut whole = whole.extractor(plans, Threads::One)?;
            whole.push(&clip, windows)?;
            whole.finish(windows)?;
        }
        Ok(())
    }
}

/// Sends the completed windows on; `false` when the next stage is gone.
fn deliver(
    windows: &mut Vec<Window>,
    arrivals: &mut Arrivals,
    out: &Sender<WindowMsg>,
    pace: Pace,
    totals: &mut Totals,
    counters: &Counters,
) -> bool {
    for window in windows.drain(..) {
        totals.windows += 1;
        let delay_s = arrivals.latest() - window.t_end;
        let arrived = arrivals.of(window.t_end);
        let msg = WindowMsg::Window {
            window,
            arrived,
            delay_s,
        };
        match pace.send(out, msg) {
            Sent::Delivered => {}
            Sent::Dropped => counters.drop_window(),
            Sent::Gone => return false,
        }
    }
    true
}
