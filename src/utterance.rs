//! Utterances: stretches of speech, each judged as a whole, the way `serd predict` judges a file.
//!
//! The rule, the same in `serd listen` (its `utterance` events) and `serd predict --utterances`:
//! an utterance is a run of consecutive windows voiced enough to be classified (the model's
//! `min_voiced`; `listen` writes an `emotion` event for each). It ends at the first window with
//! too little voiced speech (a `silence` event), or at the end of the stream. Its span runs from
//! its first window's start to its last window's end; its verdict is
//! [`Predictor::verdict`] of its windows' probabilities: their mean, calibrated with the file
//! temperature, exactly as a file's in `predict`.
//!
//! So the pause that ends an utterance is one silence window: a stretch with less than
//! `min_voiced` of voiced frames over a whole window. With the bundled model (2 s windows every
//! 1 s, `min_voiced` 0.1) a pause of 3 s (window + hop) always contains such a window; shorter
//! pauses end an utterance when a window falls on them with less than 0.2 s of voiced frames,
//! which depends on where the pause falls on the 1 s grid and on how much unvoiced sound (a
//! breath, a consonant) borders it. Windows a live stream drops (`end`'s `dropped`) are neither
//! speech nor pause: the utterance goes on without them.
//!
//! An utterance keeps its windows' probabilities until it ends: 20 bytes a window, 72 KB for an
//! hour of speech without a pause.

use serde::Serialize;

use crate::inference::{argmax, Predictor};
use crate::labels::{serialize_prob, Emotion, Probs};

/// A run of voiced windows, not yet judged.
#[derive(Clone, Debug, PartialEq)]
pub struct Stretch {
    pub t_start: f64,
    pub t_end: f64,
    /// The probabilities of its windows, in order.
    pub probs: Vec<[f32; Emotion::COUNT]>,
}

/// An utterance and its verdict, as `listen` and `predict --utterances` write it (the fields
/// after `type`, `time` or `file`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Utterance {
    pub t_start: f64,
    pub t_end: f64,
    /// The windows it is the verdict of.
    pub windows: usize,
    pub label: Emotion,
    #[serde(serialize_with = "serialize_prob")]
    pub confidence: f32,
    pub probs: Probs,
}

impl Stretch {
    /// Its verdict, as `predict` judges a file of these windows.
    pub fn judge(&self, predictor: &Predictor) -> Utterance {
        let probs = predictor
            .verdict(&self.probs)
            .expect("a stretch has at least one window");
        let label = argmax(&probs);
        Utterance {
            t_start: self.t_start,
            t_end: self.t_end,
            windows: self.probs.len(),
            label,
            confidence: probs[label.index()],
            probs: Probs(probs),
        }
    }
}

/// Cuts a stream of windows into utterances, as the windows come.
#[derive(Debug, Default)]
pub struct Segmenter {
    open: Option<Stretch>,
}

impl Segmenter {
    /// A window voiced enough to be classified, and its probabilities: the utterance goes on (or
    /// starts).
    pub fn voiced(&mut self, t_start: f64, t_end: f64, probs: [f32; Emotion::COUNT]) {
        match &mut self.open {
            Some(open) => {
                open.t_end = open.t_end.max(t_end);
                open.probs.push(probs);
            }
            None => {
                self.open = Some(Stretch {
                    t_start,
                    t_end,
                    probs: vec![probs],
                })
            }
        }
    }

    /// A window with too little voiced speech: the utterance in progress, if any, has ended.
    pub fn pause(&mut self) -> Option<Stretch> {
        self.open.take()
    }

    /// The end of the stream: the utterance in progress, if any, has ended, as at a pause.
    pub fn finish(&mut self) -> Option<Stretch> {
        self.pause()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [f32; Emotion::COUNT] = [0.7, 0.1, 0.1, 0.05, 0.05];
    const B: [f32; Emotion::COUNT] = [0.1, 0.1, 0.1, 0.6, 0.1];

    #[test]
    fn runs_of_voiced_windows_end_at_a_pause_or_the_end_of_the_stream() {
        let mut s = Segmenter::default();
        // Leading silence ends nothing.
        assert_eq!(s.pause(), None);
        s.voiced(1.0, 3.0, A);
        s.voiced(2.0, 4.0, B);
        s.voiced(3.0, 5.0, A);
        assert_eq!(
            s.pause(),
            Some(Stretch {
                t_start: 1.0,
                t_end: 5.0,
                probs: vec![A, B, A]
            })
        );
        // A second silence window in the same pause ends nothing more.
        assert_eq!(s.pause(), None);
        s.voiced(9.0, 11.0, B);
        assert_eq!(
            s.finish(),
            Some(Stretch {
                t_start: 9.0,
                t_end: 11.0,
                probs: vec![B]
            })
        );
        assert_eq!(s.finish(), None);
    }
}
