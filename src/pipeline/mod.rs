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
pub mod status;
pub mod tap;

use std::io::{self, Write};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use crate::backend::{self, Backend, NoAdapter};
use crate::features::{Extractor, Plans, Threads, Windowing, SAMPLE_RATE};
use crate::inference::Predictor;
use crate::model_dir::{ModelError, ModelInfo};
use events::{End, Event, Start};
pub use source::{AudioInput, AudioInputError};
pub use status::{Pace, Sent, SourceError, Stage, StageError, Status};
pub use tap::{Counters, Tap};

/// How long the chain may take to drain after a stop request before serd exits anyway.
const DRAIN: Duration = Duration::from_millis(900);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Backend(#[from] NoAdapter),
    #[error("{}: the model classifies whole files; listening needs a model of windows", .0.display())]
    NoWindow(PathBuf),
    #[error(transparent)]
    Source(#[from] AudioInputError),
    #[error("{}: {source}", .stage.name())]
    Stage { stage: Stage, source: StageError },
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
#[derive(Debug, Default)]
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
    let Windowing::Sliding { window, hop } = predictor.info.windowing() else {
        return Err(Error::NoWindow(options.model.clone()));
    };

    let (status_tx, status) = crossbeam_channel::unbounded();
    let (writer, input) = input::link();
    let counters = Arc::new(Counters::new(input.dropped_counter()));
    let Some(source) = open_source(&options.source, writer, status_tx.clone(), stop)? else {
        return Ok(Outcome {
            stopped: true,
            ..Outcome::default()
        });
    };
    let start = Event::Start(Start {
        time: String::new(),
        schema: events::SCHEMA,
        source: source.name.clone(),
        rate_in: source.rate,
        rate: SAMPLE_RATE,
        features: predictor.info.features,
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
    let chain = Chain {
        input,
        predictor,
        start,
        pace: if source.live { Pace::Live } else { Pace::Fast },
        counters,
        tap: options.tap.clone(),
        format: options.format,
    };
    let threads = chain.spawn(out, &status_tx);
    drop(status_tx);

    let result = supervise(&source, &status, stop, threads.len());
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

/// The stages after the source, and what they share.
struct Chain {
    input: input::Input,
    predictor: Predictor,
    /// The `start` event, which the inference stage sends once warmed up.
    start: Event,
    pace: Pace,
    counters: Arc<Counters>,
    tap: Option<Arc<dyn Tap>>,
    format: emit::Format,
}

impl Chain {
    /// Starts the resampler, feature, inference and emitter threads; each reports
    /// [`Status::Ready`] once initialised.
    fn spawn(
        self,
        out: impl Write + Send + 'static,
        status: &Sender<Status>,
    ) -> Vec<JoinHandle<()>> {
        let Chain {
            input,
            predictor,
            start,
            pace,
            counters,
            tap,
            format,
        } = self;
        let info = predictor.info.clone();
        let meter = tap.clone().map(tap::Meter::new);
        let (infer_counters, emit_counters) = (counters.clone(), counters.clone());
        let (audio_tx, audio_rx) = crossbeam_channel::bounded(64);
        let (windows_tx, windows_rx) = crossbeam_channel::bounded(16);
        let (events_tx, events_rx) = crossbeam_channel::bounded(64);
        vec![
            spawn("serd-resample", Stage::Resample, status, move |ready| {
                ready();
                Ok(resample::run(input, audio_tx, meter)?)
            }),
            spawn("serd-features", Stage::Features, status, move |ready| {
                let plans = Plans::default();
                let extractor = extractor(&info, &plans)?;
                ready();
                let recipe = info.recipe();
                Ok(functionals::run(
                    extractor, &plans, recipe, audio_rx, windows_tx, pace, &counters,
                )?)
            }),
            spawn("serd-infer", Stage::Inference, status, move |ready| {
                infer::warm_up(&predictor);
                if events_tx.send(start).is_err() {
                    return Ok(());
                }
                ready();
                infer::run(&predictor, windows_rx, events_tx, pace, &infer_counters);
                Ok(())
            }),
            spawn_emitter(events_rx, out, format, tap, emit_counters, status),
        ]
    }
}

/// The emitter's thread: it reports how the stream ended rather than [`Status::Done`].
fn spawn_emitter(
    events: Receiver<Event>,
    out: impl Write + Send + 'static,
    format: emit::Format,
    tap: Option<Arc<dyn Tap>>,
    counters: Arc<Counters>,
    status: &Sender<Status>,
) -> JoinHandle<()> {
    let status = status.clone();
    std::thread::Builder::new()
        .name("serd-emit".into())
        .spawn(move || {
            let _ = status.send(Status::Ready(Stage::Emitter));
            let msg = match emit::run(events, out, format, tap.as_deref(), Some(&counters)) {
                Ok(end) => Status::Ended(end),
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Status::Closed,
                Err(e) => Status::Failed(Stage::Emitter, StageError::Output(e)),
            };
            let _ = status.send(msg);
        })
        .expect("spawning a thread")
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
                source: StageError::Panic,
            }),
        },
        recv(stop) -> _ => Ok(None),
    }
}

/// How the ready handshake ended.
enum Handshake {
    /// Every stage is ready: the source may start.
    Ready,
    /// A stop came first: the source ends its stream without starting it.
    Stopped,
    /// stdout's reader went away.
    Closed,
}

/// Waits until the chain ends, after starting the source once `stages` stages are ready.
fn supervise(
    source: &device::DeviceHandle,
    status: &Receiver<Status>,
    stop: &Receiver<()>,
    stages: usize,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    let deadline = match handshake(source, status, stop, stages)? {
        Handshake::Ready => {
            source.start();
            None
        }
        Handshake::Stopped => {
            outcome.stopped = true;
            Some(Instant::now() + DRAIN)
        }
        Handshake::Closed => {
            outcome.closed = true;
            return Ok(outcome);
        }
    };
    drain(source, status, stop, outcome, deadline)
}

/// The ready handshake: waits for `stages` [`Status::Ready`] reports.
fn handshake(
    source: &device::DeviceHandle,
    status: &Receiver<Status>,
    stop: &Receiver<()>,
    mut stages: usize,
) -> Result<Handshake, Error> {
    while stages > 0 {
        select! {
            recv(status) -> msg => match msg {
                Ok(Status::Ready(_)) => stages -= 1,
                Ok(Status::Failed(stage, source_error)) => {
                    source.stop();
                    return Err(Error::Stage { stage, source: source_error });
                }
                Ok(Status::Closed) => {
                    source.stop();
                    return Ok(Handshake::Closed);
                }
                Ok(_) => {}
                Err(_) => return Err(Error::Stage { stage: Stage::Source, source: StageError::Stopped }),
            },
            recv(stop) -> _ => {
                // The source ends its stream without starting it; the stages that are not
                // ready yet take it when they are, so the `start` event, if written, gets
                // its `end`.
                source.stop();
                return Ok(Handshake::Stopped);
            }
        }
    }
    Ok(Handshake::Ready)
}

/// Waits for the emitter's end of the stream; after a stop or a failure, for at most [`DRAIN`].
fn drain(
    source: &device::DeviceHandle,
    status: &Receiver<Status>,
    stop: &Receiver<()>,
    mut outcome: Outcome,
    mut deadline: Option<Instant>,
) -> Result<Outcome, Error> {
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
                    failure.get_or_insert(Error::Stage { stage, source: e });
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

/// The extractor `listen` computes a model's windows with: its recipe's, on one thread.
pub(crate) fn extractor(
    info: &ModelInfo,
    plans: &Plans,
) -> Result<Extractor, crate::features::Error> {
    info.recipe().extractor(plans, Threads::One)
}

/// Starts a stage on a named thread; its closure calls `ready` once initialised. A panic is
/// turned into a failure of the stage.
fn spawn(
    name: &str,
    stage: Stage,
    status: &Sender<Status>,
    body: impl FnOnce(&dyn Fn()) -> Result<(), StageError> + Send + 'static,
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
                Err(_) => Status::Failed(stage, StageError::Panic),
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
