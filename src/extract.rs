//! Audio files to openSMILE functionals: decode → mono → rubato to 16 kHz → streaming extractor.
//!
//! [`stream_with`] is the one path from a file to feature windows, handing each to a sink as
//! openSMILE computes it (memory does not grow with the file): `serd extract` prints them (many
//! files in parallel, output in input order: `src/cli/extract.rs`), `predict` judges them
//! ([`model_stream`]), and training collects them ([`model_windows`]), so features never depend
//! on the caller.

use std::path::{Path, PathBuf};

use crate::audio::decode::{AudioFile, DecodeError, DecodeOptions};
use crate::audio::resample::{ResampleError, Resampler};
use crate::conditions::{self, Audio, Condition};
use crate::features::{
    self, Extractor, FeatureSet, FrontEnd, Plans, Threads, Window, Windowing, SAMPLE_RATE,
};

/// Samples gathered from the decoder before they go on to the resampler and openSMILE.
const BLOCK: usize = 8_192;

/// The shortest audio openSMILE computes functionals of, with either feature set: one frame of
/// its longest analysis window, 60 ms (960 samples at 16 kHz; measured, 959 give none).
pub const MIN_SECONDS: f64 = 0.06;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error(transparent)]
    Features(#[from] features::Error),
    #[error(transparent)]
    Condition(#[from] conditions::Error),
    #[error("no audio samples")]
    NoAudio,
    #[error(
        "too short: {0:.3} s of audio, and openSMILE needs at least {MIN_SECONDS} s (its longest \
         analysis frame)"
    )]
    TooShort(f64),
    #[error(
        "longer than {} min, the most serd computes whole-file functionals of (openSMILE keeps \
         every frame until the end: 20-30 MB a minute); use windows",
        MAX_WHOLE_SECONDS / 60.0
    )]
    TooLongForWhole,
    /// The consumer of the windows stopped taking them (its output failed).
    #[error("stopped")]
    Stopped,
}

/// The longest audio whose whole-file functionals serd computes: openSMILE holds every frame's
/// descriptors until the end (measured: 21 MB a minute for eGeMAPS, 28 for ComParE), so 30
/// minutes stay under 1 GB. Windowed extraction streams and has no limit.
pub const MAX_WHOLE_SECONDS: f64 = 30.0 * 60.0;

/// Where a file's windows go, one by one, as openSMILE computes them.
pub type Sink<'a> = dyn FnMut(Window) -> Result<(), FileError> + 'a;

/// What is known of a file once all its windows went to the sink.
#[derive(Clone, Copy, Debug)]
pub struct Streamed {
    pub windows: usize,
    /// Duration of the audio, seconds.
    pub seconds: f64,
    /// Sample rate and channel count of the file.
    pub rate: u32,
    pub channels: usize,
}

/// The feature windows of one file.
#[derive(Debug)]
pub struct Extracted {
    pub windows: Vec<Window>,
    /// Duration of the audio, seconds.
    pub seconds: f64,
    /// Sample rate and channel count of the file.
    pub rate: u32,
    pub channels: usize,
}

/// How a model turns audio into feature windows: feature set, windows, and the front end that
/// prepares the samples for openSMILE (none for `serd extract`, which gives openSMILE's own
/// features of the file). Recorded in the model directory, so train and serve match.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    pub set: FeatureSet,
    pub windowing: Windowing,
    pub front: Option<FrontEnd>,
}

impl Recipe {
    /// The extractor that computes this recipe's windows: the one constructor `extract`,
    /// `predict`, `eval`, `train` and `listen` all use, so that none leaves a part out.
    pub fn extractor(
        &self,
        plans: &Plans,
        threads: Threads,
    ) -> Result<Extractor, crate::features::Error> {
        Ok(Extractor::new(plans, self.set, self.windowing, threads)?.with_front_end(self.front))
    }

    /// openSMILE's own features: no front end.
    pub fn raw(set: FeatureSet, windowing: Windowing) -> Recipe {
        Recipe {
            set,
            windowing,
            front: None,
        }
    }
}

/// How a command reads its files and computes their features, besides the recipe: the same for
/// all its files.
#[derive(Clone, Debug)]
pub struct Extraction {
    /// How audio is decoded (`--strict`, raw PCM on stdin).
    pub decode: DecodeOptions,
    /// openSMILE threads per file ([`threads_per_file`]).
    pub threads: Threads,
    /// The openSMILE plans of the command's extractors.
    pub plans: Plans,
}

impl Extraction {
    /// Files decoded as `decode` says, on `threads`, with plans of their own.
    pub fn new(decode: DecodeOptions, threads: Threads) -> Extraction {
        Extraction {
            decode,
            threads,
            plans: Plans::default(),
        }
    }
}

/// A recording condition to simulate on a file before extraction ([`Condition::apply`]).
pub struct Conditioned<'a> {
    pub condition: &'a Condition,
    /// Seed of the noise instance, the room and the babble mix.
    pub seed: u64,
    /// Recordings babble may be mixed from (other speakers').
    pub babble: &'a [PathBuf],
}

/// Mono samples at the source rate → resampler → openSMILE, in blocks; windows go to a sink as
/// they come, so memory does not grow with the file.
struct Feeder {
    resampler: Resampler,
    extractor: Extractor,
    resampled: Vec<f32>,
    windows: Vec<Window>,
    samples: usize,
    sent: usize,
    whole: bool,
}

impl Feeder {
    fn new(rate: u32, recipe: Recipe, how: &Extraction) -> Result<Feeder, FileError> {
        Ok(Feeder {
            resampler: Resampler::new(rate, SAMPLE_RATE)?,
            extractor: recipe.extractor(&how.plans, how.threads)?,
            resampled: Vec::new(),
            windows: Vec::new(),
            samples: 0,
            sent: 0,
            whole: recipe.windowing == Windowing::Whole,
        })
    }

    fn push(&mut self, block: &[f32], last: bool, sink: &mut Sink) -> Result<(), FileError> {
        self.resampler.process(block, &mut self.resampled)?;
        if last {
            self.resampler.flush(&mut self.resampled)?;
        }
        self.samples += self.resampled.len();
        if self.whole && self.samples as f64 > MAX_WHOLE_SECONDS * f64::from(SAMPLE_RATE) {
            return Err(FileError::TooLongForWhole);
        }
        self.extractor.push(&self.resampled, &mut self.windows)?;
        self.resampled.clear();
        self.send(sink)
    }

    fn send(&mut self, sink: &mut Sink) -> Result<(), FileError> {
        send(&mut self.windows, &mut self.sent, sink)
    }

    /// The last windows to the sink; the number of windows and the seconds of audio at
    /// [`SAMPLE_RATE`]. Whole-file functionals of less than [`MIN_SECONDS`] are
    /// [`FileError::TooShort`].
    fn finish(mut self, sink: &mut Sink) -> Result<(usize, f64), FileError> {
        if self.samples == 0 {
            return Err(FileError::NoAudio);
        }
        self.extractor.finish(&mut self.windows)?;
        send(&mut self.windows, &mut self.sent, sink)?;
        let seconds = self.samples as f64 / f64::from(SAMPLE_RATE);
        if self.sent == 0 && self.whole {
            return Err(FileError::TooShort(seconds));
        }
        Ok((self.sent, seconds))
    }
}

/// Hands `windows` to `sink`, counting them in `sent`.
fn send(windows: &mut Vec<Window>, sent: &mut usize, sink: &mut Sink) -> Result<(), FileError> {
    for window in windows.drain(..) {
        *sent += 1;
        sink(window)?;
    }
    Ok(())
}

/// Extracts openSMILE's functionals of `path` with the given feature set and windowing, with one
/// or two openSMILE threads (the same features either way); the file decoded with the default
/// [`DecodeOptions`].
pub fn extract_file(
    path: &Path,
    set: FeatureSet,
    windowing: Windowing,
    threads: Threads,
) -> Result<Extracted, FileError> {
    let how = Extraction::new(DecodeOptions::default(), threads);
    collect(|sink| stream_with(path, Recipe::raw(set, windowing), &how, sink))
}

/// Runs a streaming extraction, keeping its windows.
fn collect(
    run: impl FnOnce(&mut Sink) -> Result<Streamed, FileError>,
) -> Result<Extracted, FileError> {
    let mut windows = Vec::new();
    let streamed = run(&mut |w| {
        windows.push(w);
        Ok(())
    })?;
    Ok(Extracted {
        windows,
        seconds: streamed.seconds,
        rate: streamed.rate,
        channels: streamed.channels,
    })
}

/// Extracts the windows of `path` as `recipe` says, reading the file as a stream and handing
/// each window to `sink` as it comes.
pub fn stream_with(
    path: &Path,
    recipe: Recipe,
    how: &Extraction,
    sink: &mut Sink,
) -> Result<Streamed, FileError> {
    stream_keeping(path, recipe, how, 0.0, sink).map(|(streamed, _)| streamed)
}

/// [`stream_with`], also returning the decoded samples (mono, at the file's rate) when the whole
/// file lasts at most `keep_seconds`: what a second pass over a short file needs without reading
/// the file again (stdin cannot be read twice, and decoding warnings would be given twice).
fn stream_keeping(
    path: &Path,
    recipe: Recipe,
    how: &Extraction,
    keep_seconds: f64,
    sink: &mut Sink,
) -> Result<(Streamed, Option<Vec<f32>>), FileError> {
    let mut file = AudioFile::open(path, how.decode)?;
    let mut feeder = Feeder::new(file.rate(), recipe, how)?;
    let keep = (keep_seconds * f64::from(file.rate())).ceil() as usize;
    let mut kept = (keep > 0).then(Vec::new);
    let mut block = Vec::with_capacity(2 * BLOCK);
    let mut more = true;
    while more {
        more = file.read(&mut block)?;
        if block.len() >= BLOCK || !more {
            if let Some(start) = &mut kept {
                start.extend_from_slice(&block);
                if start.len() > keep {
                    kept = None;
                }
            }
            feeder.push(&block, !more, sink)?;
            block.clear();
        }
    }
    let (windows, seconds) = feeder.finish(sink)?;
    let streamed = Streamed {
        windows,
        seconds,
        rate: file.rate(),
        channels: file.channels(),
    };
    Ok((streamed, kept))
}

/// Mono samples at `rate` through the resampler, front end and openSMILE, in blocks.
fn stream_samples(
    samples: &[f32],
    rate: u32,
    recipe: Recipe,
    how: &Extraction,
    sink: &mut Sink,
) -> Result<(usize, f64), FileError> {
    let mut feeder = Feeder::new(rate, recipe, how)?;
    let mut blocks = samples.chunks(BLOCK).peekable();
    if blocks.peek().is_none() {
        feeder.push(&[], true, sink)?;
    }
    while let Some(block) = blocks.next() {
        feeder.push(block, blocks.peek().is_none(), sink)?;
    }
    feeder.finish(sink)
}

/// A whole file decoded to mono at its own rate.
pub fn decode_all(path: &Path, options: DecodeOptions) -> Result<Audio, FileError> {
    let mut file = AudioFile::open(path, options)?;
    let mut samples = Vec::new();
    while file.read(&mut samples)? {}
    Ok(Audio {
        samples,
        rate: file.rate(),
    })
}

/// `path` decoded whole and conditioned at its own rate (or the rate the condition renders), to go
/// through the same resampler, front end and openSMILE as any file.
fn conditioned_audio(
    path: &Path,
    conditioned: &Conditioned,
    options: DecodeOptions,
) -> Result<Audio, FileError> {
    let audio = decode_all(path, options)?;
    let babble = if conditioned.condition.needs_babble() {
        conditioned
            .babble
            .iter()
            .map(|p| decode_all(p, options))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    Ok(conditioned
        .condition
        .apply(audio, conditioned.seed, &babble)?)
}

/// The windows a model judges `path` by (training, `eval`, `predict`), under a simulated
/// condition when one is given: its windows, or, when the file is shorter than one window, one
/// window of the whole file (the functionals over all of it), so that a short recording is still
/// classified rather than refused. `serd extract` and `serd listen` keep to whole windows.
pub fn model_windows(
    path: &Path,
    recipe: Recipe,
    how: &Extraction,
    conditioned: Option<&Conditioned>,
) -> Result<Extracted, FileError> {
    collect(|sink| model_stream(path, recipe, how, conditioned, sink))
}

/// [`model_windows`], handing each window to `sink` as it comes: memory does not grow with the
/// file. The file is read once: a file shorter than one window is kept in memory for its
/// whole-file pass.
pub fn model_stream(
    path: &Path,
    recipe: Recipe,
    how: &Extraction,
    conditioned: Option<&Conditioned>,
    sink: &mut Sink,
) -> Result<Streamed, FileError> {
    let whole = Recipe {
        windowing: Windowing::Whole,
        ..recipe
    };
    let (streamed, audio) = match conditioned {
        None => {
            // A file with no window is shorter than one window; a second more covers the
            // resampler's and openSMILE's edges.
            let keep_seconds = match recipe.windowing {
                Windowing::Whole => 0.0,
                Windowing::Sliding { window, .. } => window + 1.0,
            };
            let (streamed, kept) = stream_keeping(path, recipe, how, keep_seconds, sink)?;
            let audio = kept.map(|samples| Audio {
                samples,
                rate: streamed.rate,
            });
            (streamed, audio)
        }
        Some(c) => {
            let audio = conditioned_audio(path, c, how.decode)?;
            let (windows, seconds) = stream_samples(&audio.samples, audio.rate, recipe, how, sink)?;
            let streamed = Streamed {
                windows,
                seconds,
                rate: audio.rate,
                channels: 1,
            };
            (streamed, Some(audio))
        }
    };
    match audio {
        Some(audio) if streamed.windows == 0 && recipe.windowing != Windowing::Whole => {
            let (windows, seconds) = stream_samples(&audio.samples, audio.rate, whole, how, sink)?;
            Ok(Streamed {
                windows,
                seconds,
                ..streamed
            })
        }
        _ => Ok(streamed),
    }
}

/// openSMILE threads per file for a command that runs `files` files on rayon's worker threads:
/// two when there are two workers for every file (cores would idle otherwise), else one (the
/// split costs 10–30 % more CPU time, which would only slow a busy batch down).
pub fn threads_per_file(files: usize) -> Threads {
    if 2 * files <= rayon::current_num_threads() {
        Threads::Two
    } else {
        Threads::One
    }
}

/// Names of a feature set's functionals, as openSMILE gives them.
pub fn feature_names(set: FeatureSet) -> Result<Vec<String>, features::Error> {
    Ok(
        Extractor::new(&Plans::default(), set, Windowing::Whole, Threads::One)?
            .names()
            .to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FrontEnd;

    /// `listen` builds its extractor from a model as every other command builds theirs from the
    /// model's recipe: same feature set, windows and front end, for every set and front end.
    #[test]
    fn listen_and_extract_configure_the_same_extractor() {
        let fronts = [
            None,
            Some(FrontEnd::DEFAULT),
            Some(FrontEnd {
                floor_dbfs: -90.0,
                ..FrontEnd::DEFAULT
            }),
        ];
        for set in [FeatureSet::Egemaps, FeatureSet::Compare] {
            for front in fronts {
                let windowing = Windowing::sliding(2.0, 1.0).unwrap();
                let mut config = crate::train::TrainConfig::new(Vec::new(), PathBuf::new());
                config.set = set;
                config.front = front;
                config.windowing = windowing;
                let scaler = crate::scaler::Scaler::fit([vec![0.0; set.dimension()].as_slice()]);
                let info = crate::train::model_info(&config.options(), scaler);
                let recipe = Recipe {
                    set,
                    windowing,
                    front,
                };
                assert_eq!(info.recipe(), recipe);
                let plans = Plans::default();
                let listen = crate::pipeline::extractor(&info, &plans).unwrap();
                let extract = recipe.extractor(&plans, Threads::One).unwrap();
                assert_eq!(listen.configuration(), (set, windowing, front));
                assert_eq!(extract.configuration(), (set, windowing, front));
            }
        }
    }
}
