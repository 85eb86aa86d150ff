//! Streaming openSMILE functionals: push 16 kHz samples in chunks of any size, get windows back.
//!
//! One openSMILE instance per stream, or two that share its work ([`Threads`], `graph.rs`), runs
//! the unchanged eGeMAPSv02 / ComParE_2016 components with serd's own source and sinks:
//! - samples go in as 16-bit PCM through the external audio source, exactly as opensmile-python
//!   feeds them (`int16(x * 32768)`), so features match its `process_file` bit for bit;
//! - windows are openSMILE's own: the functionals run in `fixed` frame mode (window/hop), or in
//!   `full` mode for one vector over the whole input; the low-level descriptors are computed once
//!   for the stream, not once per window;
//! - levels are ring buffers in windowed mode, so an endless stream runs in bounded memory;
//! - each functionals level has a sink of its own (serd puts the columns in openSMILE's order), and
//!   one more reads the smoothed low-level descriptor level holding F0, which gives each window's
//!   voiced share. That level is read directly, not through the stock `lld` concatenation, whose
//!   other (unlagged) input would fill its small buffer while the lagged F0 is pending and stall
//!   the pipeline; components no sink needs (that concatenation among them) are not run.
//!
//! The same type serves files (`serd extract`, training) and live audio (`serd listen`): that is
//! what keeps training and serving features identical.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Receiver;
use serde::{Deserialize, Serialize};

use crate::opensmile::{self, Running, SinkFrame, Smile};
use graph::{Graph, Part, Split, VOICING_SINK};

mod front;
mod graph;

pub use front::{FrontEnd, REVISION as FRONT_END_REVISION};

/// The sample rate every feature extraction runs at.
pub const SAMPLE_RATE: u32 = 16_000;

/// openSMILE's low-level descriptor frame rate for both feature sets (10 ms hop).
const LLD_RATE: f64 = 100.0;

/// openSMILE's input ring buffer, in samples (20 s): long enough that a file fed faster than real
/// time rarely finds it full, small enough to keep memory bounded (80 kB per second of it).
const WAVE_BUFFER: usize = 20 * SAMPLE_RATE as usize;

/// Largest chunk written to openSMILE at once: a fraction of [`WAVE_BUFFER`].
const WRITE_CHUNK: usize = SAMPLE_RATE as usize / 2;

/// The openSMILE functionals feature sets serd offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureSet {
    /// eGeMAPSv02: 88 functionals (Eyben et al. 2016).
    Egemaps,
    /// ComParE 2016: 6373 functionals.
    Compare,
}

impl crate::choice::Choice for FeatureSet {
    const ALL: &'static [(FeatureSet, &'static str, &'static str)] = &[
        (
            FeatureSet::Egemaps,
            "egemaps",
            "eGeMAPSv02: 88 functionals (Eyben et al. 2016)",
        ),
        (
            FeatureSet::Compare,
            "compare",
            "ComParE 2016: 6373 functionals",
        ),
    ];
}

impl FeatureSet {
    /// Name on the command line and in files.
    pub fn name(self) -> &'static str {
        crate::choice::Choice::name(self)
    }

    /// Number of functionals.
    pub fn dimension(self) -> usize {
        match self {
            FeatureSet::Egemaps => 88,
            FeatureSet::Compare => 6373,
        }
    }

    /// Where [`Threads::Two`] cuts the feature set's graph: the first part gets the slowest
    /// chains (measured with openSMILE's `profiling` option: pitch, jitter/shimmer, and for
    /// eGeMAPS the formants and harmonics), the second the spectral rest.
    fn split(self) -> Split {
        match self {
            // The voiced-segment functionals read both the pitch-based descriptors (jitter,
            // shimmer, harmonics, formants) and the spectral ones: each part computes one side.
            FeatureSet::Egemaps => Split {
                first: &["egemapsv02_functionalsMeanStddevVoiced"],
                divided: Some("egemapsv02_functionalsMVRVoiced"),
            },
            FeatureSet::Compare => Split {
                first: &["is13_functionalsNz", "is13_functionalsF0"],
                divided: None,
            },
        }
    }

    fn config(self) -> &'static str {
        match self {
            FeatureSet::Egemaps => "egemaps/v02/eGeMAPSv02.conf",
            FeatureSet::Compare => "compare/ComParE_2016.conf",
        }
    }

    /// The openSMILE level holding [`Self::f0_descriptor`].
    fn f0_level(self) -> &'static str {
        match self {
            FeatureSet::Egemaps => "egemapsv02_lldsetF_smo",
            FeatureSet::Compare => "is13_lld_nzsmo",
        }
    }

    /// The low-level descriptor whose non-zero values mark voiced frames.
    fn f0_descriptor(self) -> &'static str {
        match self {
            FeatureSet::Egemaps => "F0semitoneFrom27.5Hz_sma3nz",
            FeatureSet::Compare => "F0final_sma",
        }
    }
}

/// How many openSMILE instances, each on a thread of its own, compute one stream's features.
/// The features are the same either way, bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Threads {
    /// One instance: the least CPU time, for running many streams (files) side by side.
    One,
    /// The feature set's components split across two instances: a single stream is done sooner
    /// on two cores, for some more CPU time in all (components both halves need run twice).
    Two,
}

/// How the input is cut into windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Windowing {
    /// One vector over the whole input, delivered when the input ends.
    Whole,
    /// A vector for every `window` seconds, every `hop` seconds.
    Sliding { window: f64, hop: f64 },
}

impl Windowing {
    /// Checks the window and hop lengths: both on openSMILE's 10 ms frame grid (any other value
    /// would be rounded to it, and the windows would not be where they were asked for).
    pub fn sliding(window: f64, hop: f64) -> Result<Windowing, Error> {
        for (name, seconds) in [("window", window), ("hop", hop)] {
            if seconds.is_finite() && ((seconds * 100.0).round() - seconds * 100.0).abs() > 1e-6 {
                return Err(Error::Windowing(format!(
                    "{name} must be a whole number of 10 ms frames (openSMILE's frame step), \
                     not {seconds} s"
                )));
            }
        }
        if !(window.is_finite() && (0.1..=600.0).contains(&window)) {
            return Err(Error::Windowing(format!(
                "window must be between 0.1 and 600 seconds, not {window}"
            )));
        }
        if !(hop.is_finite() && hop >= 0.01 && hop <= window) {
            return Err(Error::Windowing(format!(
                "hop must be between 0.01 s and the window ({window} s), not {hop}"
            )));
        }
        Ok(Windowing::Sliding { window, hop })
    }

    /// As `model.json` and `metrics.json` write it: window and hop in seconds, `None` for whole
    /// files.
    pub fn seconds(self) -> (Option<f64>, Option<f64>) {
        match self {
            Windowing::Whole => (None, None),
            Windowing::Sliding { window, hop } => (Some(window), Some(hop)),
        }
    }

    /// From [`Windowing::seconds`]' form (a missing hop is the window: no overlap), unchecked.
    pub fn from_seconds(window: Option<f64>, hop: Option<f64>) -> Windowing {
        match window {
            Some(window) => Windowing::Sliding {
                window,
                hop: hop.unwrap_or(window),
            },
            None => Windowing::Whole,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    OpenSmile(#[from] opensmile::Error),
    #[error(transparent)]
    Config(#[from] graph::Error),
    #[error("{0}")]
    Windowing(String),
    #[error("openSMILE delivers {got} features for {set}, expected {expected}")]
    FeatureCount {
        set: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("openSMILE stopped before the end of input")]
    Stopped,
    #[error("openSMILE's sinks delivered different windows (from {0} s on): a bug in serd")]
    OutOfStep(f64),
}

/// The functionals of one window of input.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Start, seconds of input since the first sample.
    pub t_start: f64,
    /// End, seconds (openSMILE's window start + length).
    pub t_end: f64,
    /// Share of the window's 10 ms frames that openSMILE found voiced (F0 > 0), 0 to 1.
    pub voiced: f32,
    /// The functionals, in the order of [`Extractor::names`].
    pub features: Vec<f32>,
}

impl Window {
    /// Whether the window has enough voiced speech to be classified: a model's `min_voiced` rule,
    /// the same in training, `predict`, `eval` and `listen` (which reports the others as silence).
    pub fn is_voiced(&self, min_voiced: f32) -> bool {
        self.voiced >= min_voiced
    }
}

/// The openSMILE instances that compute a feature set, and how their outputs make one vector.
#[derive(Debug)]
struct Plan {
    parts: Vec<Part>,
    /// (part, index in its levels) of each functionals sink, in output order: the configuration's
    /// order of levels, and within a level divided between the parts, the first part's columns
    /// first. A sink's tag is its place here.
    order: Vec<(usize, usize)>,
}

impl Plan {
    /// The plan for `set` and `threads`, its configurations read and written.
    fn make(set: FeatureSet, threads: Threads) -> Result<Plan, Error> {
        let dir = opensmile::Runtime::get()?.config_dir();
        let graph = Graph::load(&dir.join(set.config()))?;
        let split = (threads == Threads::Two).then(|| set.split());
        let parts = graph.parts(set.f0_level(), split)?;
        let mut order = Vec::new();
        for level in graph.functionals()? {
            for (p, part) in parts.iter().enumerate() {
                if let Some(i) = part.levels.iter().position(|l| *l == level) {
                    order.push((p, i));
                }
            }
        }
        Ok(Plan { parts, order })
    }
}

/// The openSMILE plans made so far, by feature set and threads: making one reads and writes
/// openSMILE configurations, so whoever makes many extractors (a command, over its files) keeps
/// one `Plans` for them all, and each plan is made once. Clones share the plans.
#[derive(Clone, Debug, Default)]
pub struct Plans(Arc<Mutex<Vec<PlanOf>>>);

/// A plan and the feature set and threads it is for.
type PlanOf = ((FeatureSet, Threads), Arc<Plan>);

impl Plans {
    /// The plan for `set` and `threads`, made on first use.
    fn get(&self, set: FeatureSet, threads: Threads) -> Result<Arc<Plan>, Error> {
        let mut plans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, plan)) = plans.iter().find(|(key, _)| *key == (set, threads)) {
            return Ok(Arc::clone(plan));
        }
        let plan = Arc::new(Plan::make(set, threads)?);
        plans.push(((set, threads), Arc::clone(&plan)));
        Ok(plan)
    }
}

/// The values serd's openSMILE configuration leaves open, for `windowing`.
fn smile_options(windowing: Windowing) -> Result<Vec<(&'static str, String)>, Error> {
    let rt = opensmile::Runtime::get()?;
    let dir = rt.config_dir();
    let path = |p: &str| dir.join(p).to_string_lossy().into_owned();
    let mut options = vec![
        ("source", path("serd/source.conf.inc")),
        ("frameModeFunctionalsConf", path("serd/frame_mode.conf.inc")),
        ("bufferModeRbConf", path("shared/BufferModeRb.conf.inc")),
        ("sampleRate", SAMPLE_RATE.to_string()),
        ("serdWaveBuffer", WAVE_BUFFER.to_string()),
    ];
    match windowing {
        // The whole-input functionals need every frame anyway: a growing input buffer lets the
        // writer run ahead instead of waiting on a full ring.
        Windowing::Whole => options.extend([
            ("serdFrameMode", "full".into()),
            ("serdWaveGrow", "1".into()),
            ("serdWaveRing", "0".into()),
        ]),
        Windowing::Sliding { window, hop } => {
            // The levels the functionals read keep two windows and a second of frames.
            let frames = (2.0 * window * LLD_RATE).ceil() as usize + LLD_RATE as usize;
            options.extend([
                ("serdFrameMode", "fixed".into()),
                ("serdFrameSize", format!("{window}")),
                ("serdFrameStep", format!("{hop}")),
                ("bufferModeConf", path("serd/ring_buffer.conf.inc")),
                ("serdLldFrames", frames.to_string()),
            ]);
        }
    }
    Ok(options)
}

/// Stops `runs` after one of them failed: joins those that ended, for their own error, and drops
/// (so stops) those still waiting for input, which joining would wait on forever.
fn stop(runs: Vec<Running>) -> Result<(), Error> {
    let (ended, waiting): (Vec<Running>, Vec<Running>) =
        runs.into_iter().partition(Running::is_finished);
    drop(waiting);
    for run in ended {
        run.join()?;
    }
    Ok(())
}

/// A streaming openSMILE feature extractor at [`SAMPLE_RATE`].
pub struct Extractor {
    /// The running instances; empty once one has stopped.
    runs: Vec<Running>,
    rx: Receiver<SinkFrame>,
    names: Vec<String>,
    f0: usize,
    windowing: Windowing,
    /// Frames of each functionals sink (sinks tagged by their columns' place in the output),
    /// waiting for the other sinks' frame of the same window.
    columns: Vec<VecDeque<SinkFrame>>,
    /// Functionals frames waiting for the voicing of their whole span.
    pending: VecDeque<SinkFrame>,
    /// Where two sinks first disagreed on a window's start time.
    out_of_step: Option<f64>,
    /// (start time, voiced) of low-level frames not yet behind every future window.
    voicing: VecDeque<(f64, bool)>,
    /// End time of the low-level frames seen so far.
    lld_until: f64,
    /// Start of the next window that can still arrive.
    next_start: f64,
    pcm: Vec<i16>,
    set: FeatureSet,
    /// The model's front end, if any, its stage, and its output for the chunk being written.
    front_end: Option<FrontEnd>,
    front: Option<front::Stage>,
    fronted: Vec<f32>,
    /// Samples pushed so far.
    samples: u64,
}

impl Extractor {
    /// An extractor of `set`'s functionals over `windowing`'s windows, on one or two openSMILE
    /// threads; its plan from `plans` (made there when it is the first).
    pub fn new(
        plans: &Plans,
        set: FeatureSet,
        windowing: Windowing,
        threads: Threads,
    ) -> Result<Extractor, Error> {
        let options = smile_options(windowing)?;
        let plan = plans.get(set, threads)?;
        let (parts, order) = (&plan.parts, &plan.order);
        let voicing_tag = order.len();
        // Unbounded, but never long: push() drains it while it waits on openSMILE, and openSMILE
        // only produces frames for input it was given.
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut smiles = Vec::new();
        let mut names = vec![Vec::new(); order.len()];
        let mut f0 = None;
        for (p, part) in parts.iter().enumerate() {
            let mut smile = Smile::new(&part.config, &options)?;
            for (tag, _) in order.iter().enumerate().filter(|(_, (q, _))| *q == p) {
                let sink = Part::sink(order[tag].1);
                names[tag] = smile.sink_names(&sink)?;
                smile.connect_sink(&sink, tag, tx.clone())?;
            }
            if part.voicing {
                let lld = smile.sink_names(VOICING_SINK)?;
                f0 = lld.iter().position(|n| n == set.f0_descriptor());
                smile.connect_sink(VOICING_SINK, voicing_tag, tx.clone())?;
            }
            smiles.push(smile);
        }
        let names: Vec<String> = names.concat();
        if names.len() != set.dimension() {
            return Err(Error::FeatureCount {
                set: set.name(),
                got: names.len(),
                expected: set.dimension(),
            });
        }
        let f0 = f0.ok_or_else(|| {
            opensmile::Error::Invalid(format!("no {} descriptor", set.f0_descriptor()))
        })?;
        let runs = smiles
            .into_iter()
            .enumerate()
            .map(|(p, smile)| smile.start(&format!("serd-opensmile{p}")))
            .collect::<Result<_, _>>()?;
        Ok(Extractor {
            runs,
            rx,
            names,
            f0,
            windowing,
            columns: vec![VecDeque::new(); order.len()],
            pending: VecDeque::new(),
            out_of_step: None,
            voicing: VecDeque::new(),
            lld_until: 0.0,
            next_start: 0.0,
            pcm: Vec::with_capacity(WRITE_CHUNK),
            set,
            front_end: None,
            front: None,
            fronted: Vec::new(),
            samples: 0,
        })
    }

    /// Passes the input through `front` ([`FrontEnd`]) before openSMILE; `None` (the default)
    /// gives openSMILE the samples as they are.
    pub fn with_front_end(mut self, front: Option<FrontEnd>) -> Extractor {
        self.front_end = front;
        self.front = front.map(front::Stage::new);
        self.fronted = Vec::with_capacity(if front.is_some() { WRITE_CHUNK } else { 0 });
        self
    }

    /// What it computes: the feature set, the windows and the front end.
    pub fn configuration(&self) -> (FeatureSet, Windowing, Option<FrontEnd>) {
        (self.set, self.windowing, self.front_end)
    }

    /// openSMILE's names of the functionals, in output order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Feeds samples in [-1, 1) at [`SAMPLE_RATE`]; appends the windows completed so far to `out`.
    /// Blocks while openSMILE's input buffer is full.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<Window>) -> Result<(), Error> {
        let runs = std::mem::take(&mut self.runs);
        if runs.is_empty() {
            return Err(Error::Stopped);
        }
        if let Err(e) = self.write_all(&runs, samples) {
            // The instances may have taken different input: the extractor is done.
            stop(runs)?;
            return Err(e);
        }
        self.runs = runs;
        self.samples += samples.len() as u64;
        self.drain(None);
        self.check_step()?;
        self.emit(out, false);
        Ok(())
    }

    /// Appends the windows openSMILE completed since the last call, without feeding input.
    pub fn poll(&mut self, out: &mut Vec<Window>) {
        self.drain(None);
        self.emit(out, false);
    }

    /// A receiver that becomes ready, for `crossbeam_channel::Select::ready`, when openSMILE has
    /// produced output for [`Extractor::poll`] to collect, so a live stream learns of a completed
    /// window at once. Only wait on it: frames received from it are lost to the extractor.
    pub fn output_signal(&self) -> Receiver<SinkFrame> {
        self.rx.clone()
    }

    fn write_all(&mut self, runs: &[Running], samples: &[f32]) -> Result<(), Error> {
        for chunk in samples.chunks(WRITE_CHUNK) {
            // As opensmile-python: scale by 2^15 and truncate toward zero (saturating).
            let pcm = |x: &f32| (x * 32768.0) as i16;
            self.pcm.clear();
            match &mut self.front {
                Some(front) => {
                    self.fronted.clear();
                    front.process(chunk, &mut self.fronted);
                    self.pcm.extend(self.fronted.iter().map(pcm));
                }
                None => self.pcm.extend(chunk.iter().map(pcm)),
            }
            for run in runs {
                while !run.write(&self.pcm)? {
                    if run.is_finished() {
                        return Err(Error::Stopped);
                    }
                    // openSMILE's buffer is full: collect its output while it works through it.
                    self.drain(Some(Duration::from_millis(2)));
                }
            }
        }
        Ok(())
    }

    /// Ends the input, waits for openSMILE to flush, and appends the remaining windows to `out`.
    pub fn finish(mut self, out: &mut Vec<Window>) -> Result<(), Error> {
        let runs = std::mem::take(&mut self.runs);
        if runs.is_empty() {
            return Err(Error::Stopped);
        }
        if let Err(e) = runs.iter().try_for_each(Running::end_input) {
            stop(runs)?;
            return Err(e.into());
        }
        for run in runs {
            run.join()?;
        }
        self.drain(None);
        // A level may end with a window that the others lack (openSMILE's own concatenation of
        // the levels drops it too): frames left unpaired here are not part of the output.
        self.check_step()?;
        let first = out.len();
        self.emit(out, true);
        if self.windowing == Windowing::Whole {
            // The whole-input vector spans the input, whatever openSMILE's last frame covered.
            for w in &mut out[first..] {
                w.t_start = 0.0;
                w.t_end = self.samples as f64 / f64::from(SAMPLE_RATE);
            }
        }
        Ok(())
    }

    /// Fails if the sinks delivered different windows (a bug, not a property of the input).
    fn check_step(&self) -> Result<(), Error> {
        match self.out_of_step {
            Some(t) => Err(Error::OutOfStep(t)),
            None => Ok(()),
        }
    }

    /// Moves sink frames from the channel into the window state; waits up to `wait` for the first.
    fn drain(&mut self, wait: Option<Duration>) {
        if let Some(wait) = wait {
            match self.rx.recv_timeout(wait) {
                Ok(frame) => self.accept(frame),
                Err(_) => return,
            }
        }
        while let Ok(frame) = self.rx.try_recv() {
            self.accept(frame);
        }
    }

    fn accept(&mut self, frame: SinkFrame) {
        if frame.sink == self.columns.len() {
            let voiced = frame.values.get(self.f0).is_some_and(|&f0| f0 > 0.0);
            self.voicing.push_back((frame.time, voiced));
            self.lld_until = frame.time + 1.0 / LLD_RATE;
            return;
        }
        let Some(column) = self.columns.get_mut(frame.sink) else {
            return;
        };
        column.push_back(frame);
        // Every sink delivers each window once, in time order: the fronts are one window.
        while self.columns.iter().all(|c| !c.is_empty()) {
            let mut parts = self.columns.iter_mut().filter_map(VecDeque::pop_front);
            let Some(mut window) = parts.next() else {
                return;
            };
            for part in parts {
                if (part.time - window.time).abs() > 1e-6 && self.out_of_step.is_none() {
                    self.out_of_step = Some(window.time.min(part.time));
                }
                window.values.extend_from_slice(&part.values);
            }
            self.pending.push_back(window);
        }
    }

    /// Completes the pending windows whose voicing is known (all of them at the end).
    fn emit(&mut self, out: &mut Vec<Window>, at_end: bool) {
        const EPS: f64 = 1e-6;
        while let Some(frame) = self.pending.front() {
            let (t_start, t_end) = (frame.time, frame.time + frame.length);
            if !at_end && self.lld_until + EPS < t_end {
                break;
            }
            let (mut voiced, mut total) = (0usize, 0usize);
            for &(_, v) in self
                .voicing
                .iter()
                .filter(|(t, _)| *t + EPS >= t_start && *t + EPS < t_end)
            {
                total += 1;
                voiced += usize::from(v);
            }
            let frame = self.pending.pop_front().expect("front exists");
            // openSMILE's frame times carry binary noise (16.009999999999998): whole microseconds.
            let us = |t: f64| (t * 1e6).round() / 1e6;
            out.push(Window {
                t_start: us(t_start),
                t_end: us(t_end),
                voiced: if total == 0 {
                    0.0
                } else {
                    voiced as f32 / total as f32
                },
                features: frame.values,
            });
            if let Windowing::Sliding { hop, .. } = self.windowing {
                self.next_start = t_start + hop;
            }
        }
        // Frames before the earliest window still to come are no longer needed.
        let keep_from = self.pending.front().map_or(self.next_start, |f| f.time);
        while self
            .voicing
            .front()
            .is_some_and(|&(t, _)| t + EPS < keep_from)
        {
            self.voicing.pop_front();
        }
    }
}
