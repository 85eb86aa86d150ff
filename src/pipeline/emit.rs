//! The emitter: events → JSON Lines on stdout, one flushed line each.
//!
//! It is the only writer of stdout. Latency is stamped here, just before the write. A reader that
//! closed the pipe ends the stream quietly (the caller sees `BrokenPipe`); a slow reader blocks
//! only this thread, and the bounded queue in front of it makes the inference thread drop and
//! count windows instead of piling them up. A tap (`--serve`) gets each line once it is written.

use std::io::{self, Write};

use crossbeam_channel::Receiver;

use super::events::{End, Event};
use super::tap::{Counters, Tap};

/// Writes events until the end event; returns it as written. `counters`, when given, tell
/// while a write waits for stdout's reader (`/health`).
pub fn run(
    events: Receiver<Event>,
    mut out: impl Write,
    tap: Option<&dyn Tap>,
    counters: Option<&Counters>,
) -> io::Result<End> {
    let mut emitted = 0;
    for mut event in events {
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
            Event::End(end) => end.emitted = emitted,
            Event::Start(_) | Event::Silence { .. } => {}
        }
        let mut line = event.to_line();
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
            tap.event(&event, line.trim_end_matches('\n'));
        }
        if let Event::End(end) = event {
            return Ok(end);
        }
    }
    // The stream ended without an end event: a stage before us failed.
    Err(io::Error::other("the event stream ended early"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Emotion;
    use crate::labels::Probs;
    use crate::pipeline::events::EmotionEvent;
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
            voiced: 1.0,
            latency_ms: 0.0,
            arrived,
            delay_s: 0.0,
        }))
        .unwrap();
        tx.send(Event::Silence {
            t_start: 1.0,
            t_end: 3.0,
            voiced: 0.0,
        })
        .unwrap();
        tx.send(Event::End(End {
            windows: 2,
            ..End::default()
        }))
        .unwrap();
        tx.send(Event::Silence {
            t_start: 9.0,
            t_end: 9.0,
            voiced: 0.0,
        })
        .unwrap();
        let mut out = Vec::new();
        let end = run(rx, &mut out, None, None).unwrap();
        assert_eq!((end.windows, end.emitted), (2, 1));
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        let latency = lines[0]["latency_ms"].as_f64().unwrap();
        assert!((20.0..10_000.0).contains(&latency), "{latency}");
        assert_eq!(lines[2]["emitted"], 1);
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
        let err = run(rx, Closed, None, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
