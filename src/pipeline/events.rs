//! The event stream's wire format: one JSON object per line. `docs/events.schema.json` is the
//! contract (schema 1); README ("Output schema and stability") says what may change.
//!
//! ```text
//! {"type":"start","time":T,"schema":1,"source":"mic:NAME"|"file:PATH"|"stdin","rate_in":48000,
//!  "rate":16000,"features":"compare","backend":"wgpu:ADAPTER"|"cpu","model":"DIR","window_s":2.0,
//!  "hop_s":1.0,"version":"X.Y.Z"[,"serve":"http://ADDR/"]}
//! {"type":"emotion","time":T,"t_start":S,"t_end":E,"label":"anger","confidence":0.71,
//!  "probs":{"anger":..,"surprise":..,"happiness":..,"sadness":..,"neutral":..},"voiced":0.83,"latency_ms":4.1}
//! {"type":"silence","time":T,"t_start":S,"t_end":E,"voiced":0.05}
//! {"type":"utterance","time":T,"t_start":S,"t_end":E,"windows":W,"label":"anger","confidence":0.64,
//!  "probs":{..}}
//! {"type":"end","time":T,"windows":N,"emitted":M,"silences":Q,"utterances":U,"dropped":D,"audio_s":A,
//!  "audio_dropped_s":X}
//! ```
//!
//! `time` is the wall clock (RFC 3339, UTC, milliseconds) when the emitter wrote the event;
//! `t_start`/`t_end` are seconds of stream audio.

use std::time::Instant;

use serde::Serialize;

use crate::features::FeatureSet;
use crate::labels::{serialize_prob, Emotion, Probs};
use crate::utterance::Utterance;

/// The version of the output format, `schema` in `start`: fields are only added within a
/// version; removing one or changing its meaning raises it.
pub const SCHEMA: u32 = 1;

/// One line of the event stream.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    Start(Start),
    Emotion(EmotionEvent),
    Silence(SilenceEvent),
    Utterance(UtteranceEvent),
    End(End),
}

#[derive(Debug, Clone, Serialize)]
pub struct Start {
    /// Filled in by the emitter ([`Event::stamp`]).
    pub time: String,
    /// [`SCHEMA`].
    pub schema: u32,
    /// `mic:NAME`, `file:PATH` or `stdin`.
    pub source: String,
    /// The source's sample rate; `rate` is what openSMILE works at.
    pub rate_in: u32,
    pub rate: u32,
    pub features: FeatureSet,
    /// `wgpu:ADAPTER` or `cpu`.
    pub backend: String,
    pub model: String,
    pub window_s: f64,
    pub hop_s: f64,
    pub version: String,
    /// With `listen --serve`: the live page's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serve: Option<String>,
}

#[cfg(test)]
impl Start {
    /// The `start` of a 16 kHz file replay by a ComParE model of 2 s windows every 1 s, for tests.
    pub(crate) fn example() -> Start {
        Start {
            time: String::new(),
            schema: SCHEMA,
            source: "file:a.wav".into(),
            rate_in: 16_000,
            rate: 16_000,
            features: FeatureSet::Compare,
            backend: "cpu".into(),
            model: "m".into(),
            window_s: 2.0,
            hop_s: 1.0,
            version: "0".into(),
            serve: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EmotionEvent {
    /// Filled in by the emitter ([`Event::stamp`]).
    pub time: String,
    pub t_start: f64,
    pub t_end: f64,
    pub label: Emotion,
    #[serde(serialize_with = "serialize_prob")]
    pub confidence: f32,
    pub probs: Probs,
    pub voiced: f32,
    /// Filled in by the emitter just before the line is written.
    pub latency_ms: f64,
    /// When the window's last sample reached serd.
    #[serde(skip)]
    pub arrived: Instant,
    /// Input beyond `t_end` that had arrived when the window was complete (debug log only).
    #[serde(skip)]
    pub delay_s: f64,
}

/// A window with too little voiced speech to be classified.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SilenceEvent {
    /// Filled in by the emitter ([`Event::stamp`]).
    pub time: String,
    pub t_start: f64,
    pub t_end: f64,
    pub voiced: f32,
}

impl SilenceEvent {
    pub fn new(t_start: f64, t_end: f64, voiced: f32) -> SilenceEvent {
        SilenceEvent {
            time: String::new(),
            t_start,
            t_end,
            voiced,
        }
    }
}

/// A stretch of speech that ended (a silence window, or the end of the stream), judged as a
/// whole ([`crate::utterance`]); written after the windows it is made of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UtteranceEvent {
    /// Filled in by the emitter ([`Event::stamp`]).
    pub time: String,
    #[serde(flatten)]
    pub utterance: Utterance,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct End {
    /// Filled in by the emitter ([`Event::stamp`]).
    pub time: String,
    /// Windows openSMILE delivered: `emitted + silences + dropped`.
    pub windows: u64,
    /// Emotion events written.
    pub emitted: u64,
    /// Silence events written.
    pub silences: u64,
    /// Utterance events written.
    pub utterances: u64,
    /// Windows dropped because a later stage (a slow stdout reader, say) was behind.
    pub dropped: u64,
    /// Seconds of audio that went through.
    pub audio_s: f64,
    /// Seconds of device audio dropped because the chain was behind (live input only).
    pub audio_dropped_s: f64,
}

impl Event {
    /// Sets the event's `time`.
    pub fn stamp(&mut self, time: String) {
        match self {
            Event::Start(e) => e.time = time,
            Event::Emotion(e) => e.time = time,
            Event::Silence(e) => e.time = time,
            Event::Utterance(e) => e.time = time,
            Event::End(e) => e.time = time,
        }
    }

    /// The JSON line, without its newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("events serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn emotion_events_have_the_documented_shape() {
        let e = Event::Emotion(EmotionEvent {
            time: "2026-12-07T05:12:03.123Z".into(),
            t_start: 1.0,
            t_end: 3.0,
            label: Emotion::Sadness,
            confidence: 0.5,
            probs: Probs([0.1, 0.1, 0.2, 0.5, 0.123_456]),
            voiced: 0.75,
            latency_ms: 4.25,
            arrived: Instant::now(),
            delay_s: 0.0,
        });
        let line = e.to_line();
        let v: Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "type",
                "time",
                "t_start",
                "t_end",
                "label",
                "confidence",
                "probs",
                "voiced",
                "latency_ms"
            ]
        );
        assert_eq!(v["type"], "emotion");
        assert_eq!(v["label"], "sadness");
        let classes: Vec<&str> = v["probs"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            classes,
            ["anger", "surprise", "happiness", "sadness", "neutral"]
        );
        assert_eq!(v["probs"]["sadness"], 0.5);
        assert_eq!(v["probs"]["neutral"], 0.1235);
    }

    #[test]
    fn start_silence_and_end_events() {
        let start = Event::Start(Start {
            rate_in: 48_000,
            ..Start::example()
        });
        let v: Value = serde_json::from_str(&start.to_line()).unwrap();
        assert_eq!(v["type"], "start");
        assert_eq!(v["features"], "compare");
        assert_eq!(v["rate_in"], 48_000);
        assert_eq!(v["schema"], 1);
        let mut silence = Event::Silence(SilenceEvent::new(0.0, 2.0, 0.0));
        silence.stamp("2026-12-07T05:12:03.123Z".into());
        assert_eq!(
            silence.to_line(),
            r#"{"type":"silence","time":"2026-12-07T05:12:03.123Z","t_start":0.0,"t_end":2.0,"voiced":0.0}"#
        );
        let end = Event::End(End {
            windows: 3,
            emitted: 2,
            ..End::default()
        });
        let v: Value = serde_json::from_str(&end.to_line()).unwrap();
        assert_eq!(v["type"], "end");
        assert_eq!(
            (v["windows"].as_u64(), v["emitted"].as_u64()),
            (Some(3), Some(2))
        );
    }

    #[test]
    fn utterance_events_carry_their_span_windows_and_verdict() {
        let mut e = Event::Utterance(UtteranceEvent {
            time: String::new(),
            utterance: Utterance {
                t_start: 1.0,
                t_end: 6.04,
                windows: 4,
                label: Emotion::Anger,
                confidence: 0.612_345,
                probs: Probs([0.612_345, 0.1, 0.1, 0.1, 0.087_655]),
            },
        });
        e.stamp("2026-12-07T05:12:03.123Z".into());
        assert_eq!(
            e.to_line(),
            r#"{"type":"utterance","time":"2026-12-07T05:12:03.123Z","t_start":1.0,"t_end":6.04,"windows":4,"label":"anger","confidence":0.6123,"probs":{"anger":0.6123,"surprise":0.1,"happiness":0.1,"sadness":0.1,"neutral":0.0877}}"#
        );
    }
}
