//! Audio files to openSMILE functionals: decode → mono → rubato to 16 kHz → streaming extractor.
//!
//! [`extract_file`] is the one path from a file to feature windows; `serd extract` prints its
//! results ([`run`]: many files in parallel, output in input order, bad files reported and
//! skipped), and training uses the same function, so features never depend on the caller.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::audio::decode::{AudioFile, DecodeError};
use crate::audio::resample::{ResampleError, Resampler};
use crate::features::{self, Extractor, FeatureSet, Threads, Window, Windowing, SAMPLE_RATE};

/// Samples gathered from the decoder before they go on to the resampler and openSMILE.
const BLOCK: usize = 8_192;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error(transparent)]
    Features(#[from] features::Error),
    #[error("no audio samples")]
    NoAudio,
    #[error("too short for openSMILE to compute features ({0:.3} s of audio)")]
    TooShort(f64),
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

/// Extracts the functionals of `path` with the given feature set and windowing, with one or two
/// openSMILE threads (the same features either way).
pub fn extract_file(
    path: &Path,
    set: FeatureSet,
    windowing: Windowing,
    threads: Threads,
) -> Result<Extracted, FileError> {
    let mut file = AudioFile::open(path)?;
    let mut resampler = Resampler::new(file.rate(), SAMPLE_RATE)?;
    let mut extractor = Extractor::new(set, windowing, threads)?;
    let (mut block, mut resampled, mut windows) =
        (Vec::with_capacity(2 * BLOCK), Vec::new(), Vec::new());
    let mut samples = 0usize;
    let mut more = true;
    while more {
        more = file.read(&mut block)?;
        if block.len() >= BLOCK || !more {
            resampler.process(&block, &mut resampled)?;
            if !more {
                resampler.flush(&mut resampled)?;
            }
            samples += resampled.len();
            extractor.push(&resampled, &mut windows)?;
            block.clear();
            resampled.clear();
        }
    }
    if samples == 0 {
        return Err(FileError::NoAudio);
    }
    extractor.finish(&mut windows)?;
    let seconds = samples as f64 / f64::from(SAMPLE_RATE);
    if windows.is_empty() && windowing == Windowing::Whole {
        return Err(FileError::TooShort(seconds));
    }
    Ok(Extracted {
        windows,
        seconds,
        rate: file.rate(),
        channels: file.channels(),
    })
}

/// The windows a model judges `path` by (training, `eval`, `predict`): its windows, or, when the
/// file is shorter than one window, one window of the whole file (the functionals over all of
/// it), so that a short recording is still classified rather than refused. `serd extract` and
/// `serd listen` keep to whole windows.
pub fn model_windows(
    path: &Path,
    set: FeatureSet,
    windowing: Windowing,
    threads: Threads,
) -> Result<Extracted, FileError> {
    let extracted = extract_file(path, set, windowing, threads)?;
    if extracted.windows.is_empty() && windowing != Windowing::Whole {
        return extract_file(path, set, Windowing::Whole, threads);
    }
    Ok(extracted)
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
    Ok(Extractor::new(set, Windowing::Whole, Threads::One)?
        .names()
        .to_vec())
}

/// Output format of `serd extract`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per window: {"file","t_start","t_end","voiced","features":{name: value}}.
    Jsonl,
    /// A header line, then one row per window: file,t_start,t_end,voiced,<features...>.
    Csv,
}

/// What `serd extract` did.
#[derive(Debug, Default)]
pub struct Summary {
    pub files: usize,
    pub failed: usize,
    pub windows: usize,
}

/// Extracts every file in parallel and writes the windows to `out` in input order. A file that
/// fails is reported on stderr (one line: path and problem) and skipped; the others go on. Each
/// file's features are computed on one or two threads ([`threads_per_file`]).
pub fn run(
    files: &[PathBuf],
    set: FeatureSet,
    windowing: Windowing,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<Summary> {
    let names = feature_names(set).map_err(io::Error::other)?;
    let progress = progress_bar(files.len());
    let cancel = AtomicBool::new(false);
    let threads = threads_per_file(files.len());
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut summary = Summary {
        files: files.len(),
        ..Summary::default()
    };
    if format == Format::Csv {
        write_csv_header(out, &names)?;
    }
    std::thread::scope(|scope| {
        scope.spawn(|| {
            files
                .par_iter()
                .enumerate()
                .for_each_with(tx, |tx, (i, path)| {
                    if !cancel.load(Ordering::Relaxed) {
                        let _ = tx.send((i, extract_file(path, set, windowing, threads)));
                    }
                });
        });
        // Results arrive in completion order and are written in input order.
        let mut held = BTreeMap::new();
        let mut next = 0;
        let written = (|| -> io::Result<()> {
            for (i, result) in rx.iter() {
                held.insert(i, result);
                while let Some(result) = held.remove(&next) {
                    let path = &files[next];
                    match result {
                        Ok(extracted) => {
                            if extracted.windows.is_empty() {
                                progress.suspend(|| {
                                    log::warn!(
                                        "{}: {:.2} s of audio is shorter than one window \
                                         (openSMILE needs the window plus its last 10 ms frame): \
                                         no output",
                                        path.display(),
                                        extracted.seconds
                                    )
                                });
                            }
                            summary.windows += extracted.windows.len();
                            write_windows(out, format, path, &extracted.windows, &names)?;
                        }
                        Err(e) => {
                            summary.failed += 1;
                            progress.suspend(|| log::error!("{}: {e}", path.display()));
                        }
                    }
                    progress.inc(1);
                    next += 1;
                }
            }
            out.flush()
        })();
        if written.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        progress.finish_and_clear();
        written
    })?;
    Ok(summary)
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    // indicatif draws only when stderr is a terminal.
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} extracting {pos}/{len} files [{bar:30}] {elapsed} (eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

fn write_windows(
    out: &mut dyn Write,
    format: Format,
    path: &Path,
    windows: &[Window],
    names: &[String],
) -> io::Result<()> {
    let file = path.to_string_lossy();
    for w in windows {
        match format {
            Format::Jsonl => {
                write!(
                    out,
                    "{{\"file\":{},\"t_start\":{},\"t_end\":{},\"voiced\":{},\"features\":{{",
                    json_string(&file),
                    seconds(w.t_start),
                    seconds(w.t_end),
                    number(w.voiced)
                )?;
                for (i, (name, value)) in names.iter().zip(&w.features).enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(out, "{sep}{}:{}", json_string(name), number(*value))?;
                }
                out.write_all(b"}}\n")?;
            }
            Format::Csv => {
                write!(
                    out,
                    "{},{},{},{}",
                    csv_field(&file),
                    seconds(w.t_start),
                    seconds(w.t_end),
                    number(w.voiced)
                )?;
                for value in &w.features {
                    // An empty field is a missing value to CSV readers (pandas, R, spreadsheets).
                    let text = if value.is_finite() {
                        number(*value)
                    } else {
                        String::new()
                    };
                    write!(out, ",{text}")?;
                }
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

fn write_csv_header(out: &mut dyn Write, names: &[String]) -> io::Result<()> {
    write!(out, "file,t_start,t_end,voiced")?;
    for name in names {
        write!(out, ",{}", csv_field(name))?;
    }
    out.write_all(b"\n")
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialise")
}

/// Shortest text that reads back as the same f32; `null` for NaN and infinities (not JSON).
fn number(v: f32) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

/// Seconds to the microsecond, without float noise (2.0500000000000003 → 2.05).
fn seconds(t: f64) -> String {
    format!("{}", (t * 1e6).round() / 1e6)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
