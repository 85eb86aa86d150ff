//! The inference thread: windows → the model's scaler and CNN → events.
//!
//! Windows waiting in the queue are classified together, one forward pass per batch, so a
//! replay that runs ahead of real time is not slowed by per-window calls. Windows with too little
//! voiced speech (the model's `min_voiced`) are not classified: they become `silence` events.
//! Runs of classified windows are cut into utterances ([`crate::utterance`]): an `utterance` event
//! follows the silence event that ended one, or comes before `end`.

use crossbeam_channel::{Receiver, Sender};

use super::events::{EmotionEvent, End, Event, SilenceEvent, UtteranceEvent};
use super::functionals::{Totals, WindowMsg};
use super::status::{Pace, Sent};
use super::tap::Counters;
use crate::features::Window;
use crate::inference::{argmax, Predictor};
use crate::labels::Probs;
use crate::utterance::{Segmenter, Stretch};

/// Most windows classified in one forward pass.
const BATCH: usize = 32;

/// Runs one forward pass, so that the first real window does not pay for the backend's kernel
/// compilation and tuning (seconds on wgpu).
pub fn warm_up(predictor: &Predictor) {
    let n = predictor.info.features.dimension();
    let window = Window {
        t_start: 0.0,
        t_end: 0.0,
        voiced: 1.0,
        features: vec![0.0; n],
    };
    predictor.classify(&[&window]);
}

/// Runs until the end of the window stream.
pub fn run(
    predictor: &Predictor,
    windows: Receiver<WindowMsg>,
    out: Sender<Event>,
    pace: Pace,
    counters: &Counters,
) {
    let mut classifier = Classifier {
        predictor,
        out: &out,
        pace,
        counters,
        segmenter: Segmenter::default(),
    };
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let Some(end) = next_batch(&windows, &mut batch) else {
            return;
        };
        if !classifier.classify(&mut batch) {
            return;
        }
        if let Some(totals) = end {
            classifier.finish(totals);
            return;
        }
    }
}

/// A window waiting to be classified, with when it arrived and its algorithmic delay.
type Pending = (Window, std::time::Instant, f64);

/// Waits for a window and takes those already queued behind it, up to [`BATCH`], into `batch`:
/// `Some(totals)` once the end of stream is among them, `None` when the stream is gone.
fn next_batch(windows: &Receiver<WindowMsg>, batch: &mut Vec<Pending>) -> Option<Option<Totals>> {
    let mut next = Some(windows.recv().ok()?);
    while let Some(msg) = next {
        match msg {
            WindowMsg::Window {
                window,
                arrived,
                delay_s,
            } => batch.push((window, arrived, delay_s)),
            WindowMsg::End(totals) => return Some(Some(totals)),
        }
        next = if batch.len() < BATCH {
            windows.try_recv().ok()
        } else {
            None
        };
    }
    Some(None)
}

/// Windows → events: the forward pass, silence, and the utterances the windows make.
struct Classifier<'a> {
    predictor: &'a Predictor,
    out: &'a Sender<Event>,
    pace: Pace,
    counters: &'a Counters,
    segmenter: Segmenter,
}

impl Classifier<'_> {
    /// Classifies the voiced windows of `batch` in one forward pass and sends an event for every
    /// window (and for every utterance that ends), draining `batch`; false when the output is gone.
    fn classify(&mut self, batch: &mut Vec<Pending>) -> bool {
        let min_voiced = self.predictor.info.min_voiced;
        let voiced: Vec<&Window> = batch
            .iter()
            .map(|(w, _, _)| w)
            .filter(|w| w.is_voiced(min_voiced))
            .collect();
        let mut probs = self.predictor.classify(&voiced).into_iter();
        for (window, arrived, delay_s) in batch.drain(..) {
            let mut ended = None;
            let event = if window.is_voiced(min_voiced) {
                let p = probs.next().expect("one result per voiced window");
                self.segmenter.voiced(window.t_start, window.t_end, p);
                let label = argmax(&p);
                Event::Emotion(EmotionEvent {
                    time: String::new(),
                    t_start: window.t_start,
                    t_end: window.t_end,
                    label,
                    confidence: p[label.index()],
                    probs: Probs(p),
                    voiced: window.voiced,
                    latency_ms: 0.0,
                    arrived,
                    delay_s,
                })
            } else {
                ended = self.segmenter.pause();
                Event::Silence(SilenceEvent::new(
                    window.t_start,
                    window.t_end,
                    window.voiced,
                ))
            };
            if !self.send(event) || !ended.is_none_or(|s| self.send_utterance(s)) {
                return false;
            }
        }
        true
    }

    /// The end of the stream: the utterance in progress, then the `end` event.
    fn finish(&mut self, totals: Totals) {
        if self
            .segmenter
            .finish()
            .is_some_and(|s| !self.send_utterance(s))
        {
            return;
        }
        let _ = self.out.send(Event::End(End {
            windows: totals.windows,
            dropped: self.counters.windows_dropped(),
            audio_s: totals.audio_s,
            audio_dropped_s: totals.audio_dropped_s,
            // The emitter counts what it writes.
            ..End::default()
        }));
    }

    /// A window's event; one the output cannot take in time is counted as a dropped window.
    fn send(&self, event: Event) -> bool {
        match self.pace.send(self.out, event) {
            Sent::Delivered => true,
            Sent::Dropped => {
                self.counters.drop_window();
                true
            }
            Sent::Gone => false,
        }
    }

    /// Utterance events are not windows: one the emitter's queue cannot take (live input, with
    /// stdout's reader so far behind that windows are dropped too) is reported on stderr.
    fn send_utterance(&self, stretch: Stretch) -> bool {
        let event = Event::Utterance(UtteranceEvent {
            time: String::new(),
            utterance: stretch.judge(self.predictor),
        });
        match self.pace.send(self.out, event) {
            Sent::Delivered => true,
            Sent::Dropped => {
                log::warn!(
                    "the utterance {:.1}-{:.1} s was dropped: the output was behind",
                    stretch.t_start,
                    stretch.t_end
                );
                true
            }
            Sent::Gone => false,
        }
    }
}
