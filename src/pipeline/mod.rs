//! `serd listen`: the real-time chain, and the supervisor that runs it.
//!
//! ```text
//! source (cpal callback | file replay) ─[input: pooled blocks]─▶ serd-resample (mono, 16 kHz)
//!   ─[AudioMsg]─▶ serd-features (openSMILE) ─[WindowMsg]─▶ serd-infer (scaler, CNN)
//!   ─[Event]─▶ serd-emit (JSON Lines on stdout) ─▶ tap (`--serve`, optional)
//! ```
//!
//! Every link is a bounded channel carrying one message enum with an explicit end of stream;
//! data flows one way. The supervisor starts the stages, waits until each reports ready (the
//! model warmed up, openSMILE started) before the source starts, and then waits for the end:
//! the source ending (end of file, stop request, lost device) sends the end of stream down the
//! chain and the emitter writes the final `end` event. A failing stage is reported as an error
//! naming the stage.
//!
//! Live sources never wait for the chain: the callback drops audio when the pool is empty, and
//! windows are dropped (and counted in `end`) when the inference or the stdout reader is behind.
//! A file replayed as fast as possible waits instead, so nothing is dropped.

pub mod device;
pub mod emit;
pub mod events;
pub mod functionals;
pub mod infer;
pub mod input;
pub mod mic;
pub mod replay;
pub mod resample;
pub mod source;
pub mod tap;

use std::io::{self, Write};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender, TrySendError};

use crate::backend::{self, Backend, NoAdapter};
use crate::features::{Extractor, Threads, Windowing, SAMPLE_RATE};
use crate::inference::Predictor;
use crate::model_dir::{ModelError, ModelInfo};
use events::{End, Event, Start};
pub use source::{AudioInput, AudioInputError};
pub use tap::{Counters, Tap};

/// How long the chain may take to drain after a stop request before serd exits anyway.
const DRAIN: Duration = Duration::from_millis(900);

/// What a stage does when the next one is behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Real-time input: drop the message (the caller counts it) rather than fall behind.
    Live,
    /// Replay as fast as possible: wait.
    Fast,
}

/// What became of a message passed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// The next stage was behind (live input only); the caller counts it.
    Dropped,
    /// The next stage is gone.
    Gone,
}

impl Pace {
    pub fn send<T>(self, tx: &Sender<T>, msg: T) -> Sent {
        let result = match self {
            Pace::Fast => tx.send(msg).map_err(|_| TrySendError::Disconnected(())),
            Pace::Live => tx.try_send(msg).map_err(|e| match e {
                TrySendError::Full(_) => TrySendError::Full(()),
                TrySendError::Disconnected(_) => TrySendError::Disconnected(()),
            }),
        };
        match result {
            Ok(()) => Sent::Delivered,
            Err(TrySendError::Full(())) => Sent::Dropped,
            Err(TrySendError::Disconnected(())) => Sent::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_links_drop_when_full_and_fast_links_wait() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        assert_eq!(Pace::Live.send(&tx, 1), Sent::Delivered);
        assert_eq!(Pace::Live.send(&tx, 2), Sent::Dropped);
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let got: Vec<i32> = rx.iter().collect();
            got
        });
        // Waits until the reader makes room.
        assert_eq!(Pace::Fast.send(&tx, 3), Sent::Delivered);
        drop(tx);
        assert_eq!(reader.join().unwrap(), [1, 3]);
        let (tx, rx) = crossbeam_channel::bounded(1);
        drop(rx);
        assert_eq!(Pace::Live.send(&tx, 1), Sent::Gone);
        assert_eq!(Pace::Fast.send(&tx, 1), Sent::Gone);
    }
}

/// The parts of the chain, as named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Source,
    Resample,
    Features,
    Inference,
    Emitter,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Source => "audio input",
            Stage::Resample => "resampler",
            Stage::Features => "feature extraction",
            Stage::Inference => "inference",
            Stage::Emitter => "output",
        }
    }
}

/// What stages tell the supervisor.
#[derive(Debug)]
pub enum Status {
    Ready(Stage),
    Done(Stage),
    /// The emitter finished: the end event as written.
    Ended(End),
    /// stdout was closed by its reader.
    Closed,
    Failed(Stage, String),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Backend(#[from] NoAdapter),
    #[error("{}: the model classifies whole files; listening needs a model trained with --window", .0.display())]
    NoWindow(PathBuf),
    #[error(transparent)]
    Source(#[from] AudioInputError),
    #[error("{}: {message}", .stage.name())]
    Stage { stage: Stage, message: String },
}

/// `serd listen`'s settings.
#[derive(Clone)]
pub struct Options {
    pub source: AudioInput,
    pub model: PathBuf,
    pub backend: Backend,
    /// What stdout carries: JSON Lines, or text for a person.
    pub format: emit::Format,
    /// A second way out besides stdout (`--serve`).
    pub tap: Option<Arc<dyn Tap>>,
}

/// How the stream ended.
#[derive(Debug)]
pub struct Outcome {
    /// The final `end` event; `None` when stdout was closed before it.
    pub end: Option<End>,
    /// The reader closed stdout.
    pub closed: bool,
    /// A stop was requested (SIGINT/SIGTERM/SIGHUP).
    pub stopped: bool,
}

/// Runs the chain until the source ends, `stop` receives, or a stage fails; events go to `out`.
pub fn run(
    options: &Options,
    out: impl Write + Send + 'static,
    stop: &Receiver<()>,
) -> Result<Outcome, Error> {
    let selected = backend::select(options.backend)?;
    let predictor = Predictor::load(&options.model, selected.device)?;
    let info = predictor.info.clone();
    let recipe = info.recipe();
    let Windowing::Sliding { window, hop } = info.windowing() else {
        return Err(Error::NoWindow(options.model.clone()));
    };

    let (status_tx, status) = crossbeam_channel::unbounded();
    let (writer, input) = input::link();
    let counters = Arc::new(Counters::new(input.dropped_counter()));
    let Some(source) = open_source(&options.source, writer, status_tx.clone(), stop)? else {
        return Ok(Outcome {
            end: None,
            closed: false,
            stopped: true,
        });
    };
    let pace = if source.live { Pace::Live } else { Pace::Fast };
    let start = Event::Start(Start {
        time: String::new(),
        schema: events::SCHEMA,
        source: source.name.clone(),
        rate_in: source.rate,
        rate: SAMPLE_RATE,
        features: info.features,
        backend: selected.name.clone(),
        model: options.model.display().to_string(),
        window_s: window,
        hop_s: hop,
        version: env!("CARGO_PKG_VERSION").to_string(),
        serve: options.tap.as_ref().map(|t| t.address()),
    });
    if let Some(tap) = &options.tap {
        tap.attach(counters.clone());
    }
    let meter = options.tap.clone().map(tap::Meter::new);
    let tap = options.tap.clone();
    let infer_counters = counters.clone();
    let emit_counters = counters.clone();

    let (audio_tx, audio_rx) = crossbeam_channel::bounded(64);
    let (windows_tx, windows_rx) = crossbeam_channel::bounded(16);
    let (events_tx, events_rx) = crossbeam_channel::bounded(64);
    let mut threads = vec![
        spawn("serd-resample", Stage::Resample, &status_tx, move |ready| {
            ready();
            resample::run(input, audio_tx, meter).map_err(|e| e.to_string())
        }),
        spawn("serd-features", Stage::Features, &status_tx, move |ready| {
            let extractor = extractor(&info).map_err(|e| e.to_string())?;
            ready();
            functionals::run(extractor, recipe, audio_rx, windows_tx, pace, &counters)
                .map_err(|e| e.to_string())
        }),
        spawn("serd-infer", Stage::Inference, &status_tx, move |ready| {
            infer::warm_up(&predictor);
            if events_tx.send(start).is_err() {
                return Ok(());
            }
            ready();
            infer::run(&predictor, windows_rx, events_tx, pace, &infer_counters);
            Ok(())
        }),
    ];
    let emitter_status = status_tx.clone();
    let format = options.format;
    threads.push(
        std::thread::Builder::new()
            .name("serd-emit".into())
            .spawn(move || {
                let _ = emitter_status.send(Status::Ready(Stage::Emitter));
                let msg =
                    match emit::run(events_rx, out, format, tap.as_deref(), Some(&emit_counters)) {
                        Ok(end) => Status::Ended(end),
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Status::Closed,
                        Err(e) => Status::Failed(Stage::Emitter, format!("writing events: {e}")),
                    };
                let _ = emitter_status.send(msg);
            })
            .expect("spawning a thread"),
    );
    drop(status_tx);

    let result = supervise(&source, &status, stop);
    // On success every stage has finished; on failure some may still be stuck on a device or
    // openSMILE: the process is about to exit, so they are left behind rather than waited for.
    if matches!(result, Ok(Outcome { end: Some(_), .. })) {
        source.join();
        for t in threads {
            let _ = t.join();
        }
    }
    result
}

/// Opens the source on a thread of its own, so that a stop request is heard while opening
/// blocks (a FIFO nobody opened for writing, a stream whose header has not come): `None` when the
/// stop came first. The opening thread is then left blocked in the kernel; the process is about
/// to exit.
fn open_source(
    input: &AudioInput,
    writer: input::Writer,
    status: Sender<Status>,
    stop: &Receiver<()>,
) -> Result<Option<device::DeviceHandle>, Error> {
    let (tx, opened) = crossbeam_channel::bounded(1);
    let input = input.clone();
    std::thread::Builder::new()
        .name("serd-open".into())
        .spawn(move || {
            let _ = tx.send(source::open(&input, writer, status));
        })
        .expect("spawning a thread");
    select! {
        recv(opened) -> result => match result {
            Ok(result) => Ok(Some(result?)),
            Err(_) => Err(Error::Stage {
                stage: Stage::Source,
                message: "internal error (a panic; please report it)".into(),
            }),
        },
        recv(stop) -> _ => Ok(None),
    }
}

fn supervise(
    source: &device::DeviceHandle,
    status: &Receiver<Status>,
    stop: &Receiver<()>,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome {
        end: None,
        closed: false,
        stopped: false,
    };
    // Ready handshake: the four stages after the source.
    let mut waiting = 4;
    while waiting > 0 {
        select! {
            recv(status) -> msg => match msg {
                Ok(Status::Ready(_)) => waiting -= 1,
                Ok(Status::Failed(stage, e)) => {
                    source.stop();
                    return Err(Error::Stage { stage, message: e });
                }
                Ok(Status::Closed) => {
                    source.stop();
                    outcome.closed = true;
                    return Ok(outcome);
                }
                Ok(_) => {}
                Err(_) => return Err(Error::Stage { stage: Stage::Source, message: "the chain stopped".into() }),
            },
            recv(stop) -> _ => {
                // The source ends its stream without starting it; the stages that are not
                // ready yet take it when they are, so the `start` event, if written, gets
                // its `end`.
                source.stop();
                outcome.stopped = true;
                break;
            }
        }
    }
    let mut deadline: Option<Instant> = None;
    if outcome.stopped {
        deadline = Some(Instant::now() + DRAIN);
    } else {
        source.start();
    }
    let mut failure = None;
    loop {
        // No deadline until a stop or a failure: a live stream is waited on for ever.
        let drained = deadline.map_or_else(crossbeam_channel::never, crossbeam_channel::at);
        select! {
            recv(status) -> msg => match msg {
                Ok(Status::Ended(end)) => {
                    outcome.end = Some(end);
                    break;
                }
                Ok(Status::Closed) => {
                    source.stop();
                    outcome.closed = true;
                    break;
                }
                Ok(Status::Failed(stage, e)) => {
                    source.stop();
                    // The first failure is the cause; give the chain a moment to write `end`.
                    failure.get_or_insert(Error::Stage { stage, message: e });
                    if stage == Stage::Emitter {
                        break;
                    }
                    deadline.get_or_insert(Instant::now() + DRAIN);
                }
                Ok(Status::Ready(_) | Status::Done(_)) => {}
                Err(_) => break,
            },
            recv(stop) -> _ => {
                source.stop();
                outcome.stopped = true;
                deadline.get_or_insert(Instant::now() + DRAIN);
            },
            recv(drained) -> _ => {
                log::warn!("the chain did not drain within {} ms; exiting", DRAIN.as_millis());
                break;
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

/// Starts a stage on a named thread; its closure calls `ready` once initialised. A panic is
/// turned into a failure of the stage.
/// The extractor `listen` computes a model's windows with: its recipe's, on one thread.
pub(crate) fn extractor(info: &ModelInfo) -> Result<Extractor, crate::features::Error> {
    info.recipe().extractor(Threads::One)
}

fn spawn(
    name: &str,
    stage: Stage,
    status: &Sender<Status>,
    body: impl FnOnce(&dyn Fn()) -> Result<(), String> + Send + 'static,
) -> JoinHandle<()> {
    let status = status.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let ready = || {
                let _ = status.send(Status::Ready(stage));
            };
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| body(&ready)));
            let msg = match result {
                Ok(Ok(())) => Status::Done(stage),
                Ok(Err(e)) => Status::Failed(stage, e),
                Err(_) => {
                    Status::Failed(stage, "internal error (a panic; please report it)".into())
                }
            };
            let _ = status.send(msg);
        })
        .expect("spawning a thread")
}

/// A channel that receives once on SIGINT, SIGTERM or SIGHUP (the terminal was closed: a stop
/// like any other, with the `end` event written).
pub fn stop_on_signals() -> io::Result<Receiver<()>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("serd-signals".into())
        .spawn(move || {
            for (n, _) in signals.forever().enumerate() {
                if n > 0 {
                    // A second signal: the user does not want to wait for the drain.
                    std::process::exit(130);
                }
                let _ = tx.try_send(());
            }
        })?;
    Ok(rx)
}
