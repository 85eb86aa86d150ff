//! The emitter: events → lines on stdout, one flushed line each: JSON Lines, or with
//! `--format text` a line a person reads.
//!
//! It is the only writer of stdout. Latency and `time` are stamped here, just before the write. A
//! reader that closed the pipe ends the stream quietly (the caller sees `BrokenPipe`); a slow
//! reader blocks only this thread, and the bounded queue in front of it makes the inference
//! thread drop and count windows instead of piling them up. A tap (`--serve`) gets each event's
//! JSON line once it is written, whatever stdout's format.

use std::io::{self, Write};

use crossbeam_channel::Receiver;

use super::events::{End, Event};
use super::tap::{Counters, Tap};
use crate::labels::round_prob;

/// What stdout carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per event (`docs/events.schema.json`).
    #[default]
    Json,
    /// One line per event for a person at a terminal; not for parsing.
    Text,
}

impl crate::choice::Choice for Format {
    const ALL: &'static [(Format, &'static str, &'static str)] = &[
        (
            Format::Json,
            "json",
            "JSON Lines, one object per event (docs/events.schema.json)",
        ),
        (
            Format::Text,
            "text",
            "One readable line per event, for a person at a terminal (not for parsing)",
        ),
    ];
}

/// Writes events until the end event; returns it as written. `counters`, when given, tell
/// while a write waits for stdout's reader (`/health`).
pub fn run(
    events: Receiver<Event>,
    mut out: impl Write,
    format: Format,
    tap: Option<&dyn Tap>,
    counters: Option<&Counters>,
) -> io::Result<End> {
    let (mut emitted, mut silences, mut utterances) = (0, 0, 0);
    for mut event in events {
        event.stamp(crate::clock::now());
        match &mut event {
            Event::Emotion(e) => {
                e.latency_ms = (e.arrived.elapsed().as_secs_f64() * 1e6).round() / 1e3;
                emitted += 1;
                log::debug!(
                    "window {:.2}-{:.2} s: latency {:.3} ms; completed {:.1} ms of input after its end",
                    e.t_start,
                    e.t_end,
                    e.latency_ms,
                    e.delay_s * 1e3
                );
            }
            Event::Silence(_) => silences += 1,
            Event::Utterance(_) => utterances += 1,
            Event::End(end) => {
                end.emitted = emitted;
                end.silences = silences;
                end.utterances = utterances;
            }
            Event::Start(_) => {}
        }
        let json = event.to_line();
        let mut line = match format {
            Format::Json => json.clone(),
            Format::Text => text_line(&event),
        };
        line.push('\n');
        if let Some(c) = counters {
            c.writing_stdout(true);
        }
        out.write_all(line.as_bytes())?;
        out.flush()?;
        if let Some(c) = counters {
            c.writing_stdout(false);
        }
        if let Some(tap) = tap {
            tap.event(&event, &json);
        }
        if let Event::End(end) = event {
            return Ok(end);
        }
    }
    // The stream ended without an end event: a stage before us failed.
    Err(io::Error::other("the event stream ended early"))
}

/// An event as `--format text` writes it: the wall-clock time (UTC, to the millisecond), the
/// stream time, and what was heard.
///
/// ```text
/// 05:12:03.123  start    file:talk.wav  (compare, 2 s windows every 1 s, cpu)
/// 05:12:03.201    1.0–3.0 s  anger       0.97  voiced 0.75
/// 05:12:03.240    7.0–9.0 s  (silence)         voiced 0.00
/// 05:12:03.241  utterance  1.0–7.0 s  anger  0.81  (5 windows)
/// 05:12:03.300  end      8 windows: 6 emotions, 2 silences, 0 dropped; 1 utterance; 10.0 s of audio
/// ```
pub fn text_line(event: &Event) -> String {
    let clock = |time: &str| time.get(11..23).unwrap_or(time).to_string();
    match event {
        Event::Start(s) => format!(
            "{}  start    {}  ({}, {} s windows every {} s, {}){}",
            clock(&s.time),
            s.source,
            s.features.name(),
            s.window_s,
            s.hop_s,
            s.backend,
            s.serve
                .as_ref()
                .map_or(String::new(), |a| format!("; live page {a}"))
        ),
        Event::Emotion(e) => format!(
            "{}  {:>6.1}–{:.1} s  {:<10}  {:.2}  voiced {:.2}",
            clock(&e.time),
            e.t_start,
            e.t_end,
            e.label.name(),
            round_prob(e.confidence),
            e.voiced
        ),
        Event::Silence(s) => format!(
            "{}  {:>6.1}–{:.1} s  {:<10}        voiced {:.2}",
            clock(&s.time),
            s.t_start,
            s.t_end,
            "(silence)",
            s.voiced
        ),
        Event::Utterance(e) => {
            let u = &e.utterance;
            format!(
                "{}  utterance  {:.1}–{:.1} s  {}  {:.2}  ({} window{})",
                clock(&e.time),
                u.t_start,
                u.t_end,
                u.label.name(),
                round_prob(u.confidence),
                u.windows,
                if u.windows == 1 { "" } else { "s" }
            )
        }
        Event::End(e) => {
            let mut line = format!(
                "{}  end      {} windows: {} emotions, {} silences, {} dropped; {} utterance{}; {:.1} s of audio",
                clock(&e.time),
                e.windows,
                e.emitted,
                e.silences,
                e.dropped,
                e.utterances,
                if e.utterances == 1 { "" } else { "s" },
                e.audio_s
            );
            if e.audio_dropped_s > 0.0 {
                line += &format!(" ({:.1} s dropped)", e.audio_dropped_s);
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Emotion;
    use crate::labels::Probs;
    use crate::pipeline::events::{EmotionEvent, SilenceEvent, Start, UtteranceEvent};
    use crate::utterance::Utterance;
    use std::time::{Duration, Instant};

    #[test]
    fn stamps_latency_counts_emitted_and_stops_at_the_end() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let arrived = Instant::now() - Duration::from_millis(20);
        tx.send(Event::Emotion(EmotionEvent {
            t_start: 0.0,
            t_end: 2.0,
            label: Emotion::Anger,
            confidence: 0.9,
            probs: Probs([0.9, 0.025, 0.025, 0.025, 0.025]),
            time: String::new(),
            voiced: 1.0,
            latency_ms: 0.0,
            arrived,
            delay_s: 0.0,
        }))
        .unwrap();
        tx.send(Event::Silence(SilenceEvent::new(1.0, 3.0, 0.0)))
            .unwrap();
        tx.send(Event::End(End {
            windows: 2,
            ..End::default()
        }))
        .unwrap();
        tx.send(Event::Silence(SilenceEvent::new(9.0, 9.0, 0.0)))
            .unwrap();
        let mut out = Vec::new();
        let end = run(rx, &mut out, Format::Json, None, None).unwrap();
        assert_eq!((end.windows, end.emitted, end.silences), (2, 1, 1));
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        let latency = lines[0]["latency_ms"].as_f64().unwrap();
        assert!((20.0..10_000.0).contains(&latency), "{latency}");
        assert_eq!(lines[2]["emitted"], 1);
        assert_eq!(lines[2]["silences"], 1);
        for line in &lines {
            let time = line["time"].as_str().unwrap();
            assert_eq!(time.len(), "2026-12-07T05:12:03.123Z".len(), "{time}");
            assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        }
    }

    #[test]
    fn a_closed_stdout_is_an_error_the_caller_can_recognise() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(Event::End(End::default())).unwrap();
        let err = run(rx, Closed, Format::Json, None, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn text_lines_say_what_was_heard() {
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(Event::Start(Start {
            source: "file:talk.wav".into(),
            ..Start::example()
        }))
        .unwrap();
        tx.send(Event::Emotion(EmotionEvent {
            time: String::new(),
            t_start: 1.0,
            t_end: 3.01,
            label: Emotion::Anger,
            confidence: 0.971,
            probs: Probs([0.971, 0.009, 0.01, 0.005, 0.005]),
            voiced: 0.75,
            latency_ms: 0.0,
            arrived: Instant::now(),
            delay_s: 0.0,
        }))
        .unwrap();
        tx.send(Event::Silence(SilenceEvent::new(7.0, 9.01, 0.0)))
            .unwrap();
        tx.send(Event::Utterance(UtteranceEvent {
            time: String::new(),
            utterance: Utterance {
                t_start: 1.0,
                t_end: 3.01,
                windows: 1,
                label: Emotion::Anger,
                confidence: 0.812,
                probs: Probs([0.812, 0.05, 0.05, 0.05, 0.038]),
            },
        }))
        .unwrap();
        tx.send(Event::End(End {
            windows: 2,
            audio_s: 10.0,
            ..End::default()
        }))
        .unwrap();
        let mut out = Vec::new();
        run(rx, &mut out, Format::Text, None, None).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        // Each line starts with the time of day, HH:MM:SS.mmm.
        for line in &lines {
            let clock = &line[..12];
            assert!(
                clock.as_bytes()[2] == b':' && clock.as_bytes()[8] == b'.',
                "{line}"
            );
        }
        assert!(
            lines[0].contains("start    file:talk.wav  (compare, 2 s windows every 1 s, cpu)"),
            "{out}"
        );
        assert!(
            lines[1].ends_with("   1.0–3.0 s  anger       0.97  voiced 0.75"),
            "{out}"
        );
        assert!(
            lines[2].ends_with("   7.0–9.0 s  (silence)         voiced 0.00"),
            "{out}"
        );
        assert!(
            lines[3].ends_with("utterance  1.0–3.0 s  anger  0.81  (1 window)"),
            "{out}"
        );
        assert!(
            lines[4].ends_with(
                "end      2 windows: 1 emotions, 1 silences, 0 dropped; 1 utterance; 10.0 s of audio"
            ),
            "{out}"
        );
    }
}
