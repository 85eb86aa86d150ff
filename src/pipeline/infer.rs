//! The inference thread: windows → the model's scaler and CNN → events.
//!
//! Windows waiting in the queue are classified together, one forward pass per batch, so a
//! replay that runs ahead of real time is not slowed by per-window calls. Windows with too little
//! voiced speech (the model's `min_voiced`) are not classified: they become `silence` events.
//! Runs of classified windows are cut into utterances ([`crate::utterance`]): an `utterance` event
//! follows the silence event that ended one, or comes before `end`.

use crossbeam_channel::{Receiver, Sender};

use super::events::{EmotionEvent, End, Event, SilenceEvent, UtteranceEvent};
use super::functionals::WindowMsg;
use super::tap::Counters;
use super::{Pace, Sent};
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
    let min_voiced = predictor.info.min_voiced;
    let mut segmenter = Segmenter::default();
    let send = |event| match pace.send(&out, event) {
        Sent::Delivered => true,
        Sent::Dropped => {
            counters.drop_window();
            true
        }
        Sent::Gone => false,
    };
    // Utterance events are not windows: one the emitter's queue cannot take (live input, with
    // stdout's reader so far behind that windows are dropped too) is reported on stderr.
    let send_utterance = |stretch: Stretch| {
        let event = Event::Utterance(UtteranceEvent {
            time: String::new(),
            utterance: stretch.judge(predictor),
        });
        match pace.send(&out, event) {
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
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut end = None;
    while end.is_none() {
        let Ok(first) = windows.recv() else { return };
        batch.clear();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                WindowMsg::Window {
                    window,
                    arrived,
                    delay_s,
                } => batch.push((window, arrived, delay_s)),
                WindowMsg::End(totals) => {
                    end = Some(totals);
                    break;
                }
            }
            next = if batch.len() < BATCH {
                windows.try_recv().ok()
            } else {
                None
            };
        }
        let voiced: Vec<&Window> = batch
            .iter()
            .map(|(w, _, _)| w)
            .filter(|w| w.is_voiced(min_voiced))
            .collect();
        let mut probs = predictor.classify(&voiced).into_iter();
        for (window, arrived, delay_s) in batch.drain(..) {
            let mut ended = None;
            let event = if window.is_voiced(min_voiced) {
                let p = probs.next().expect("one result per voiced window");
                segmenter.voiced(window.t_start, window.t_end, p);
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
                ended = segmenter.pause();
                Event::Silence(SilenceEvent::new(
                    window.t_start,
                    window.t_end,
                    window.voiced,
                ))
            };
            if !send(event) || !ended.is_none_or(&send_utterance) {
                return;
            }
        }
    }
    if segmenter.finish().is_some_and(|s| !send_utterance(s)) {
        return;
    }
    let totals = end.expect("loop ends with the end of stream");
    let _ = out.send(Event::End(End {
        windows: totals.windows,
        dropped: counters.windows_dropped(),
        audio_s: totals.audio_s,
        audio_dropped_s: totals.audio_dropped_s,
        // The emitter counts what it writes.
        ..End::default()
    }));
}
