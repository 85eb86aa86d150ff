//! `serd extract`: openSMILE functionals of audio files, one line per window.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;

use crossbeam_channel::{Receiver, Sender};
use indicatif::ProgressBar;
use serd::audio::decode::DecodeOptions;
use serd::extract::{
    feature_names, stream_with, threads_per_file, Extraction, FileError, Recipe, Streamed,
};
use serd::features::{FeatureSet, Window};

/// Print openSMILE functionals of audio files, one line per window.
///
/// Files are decoded (WAV, AIFF, FLAC, MP3, Ogg Vorbis; any channel count, mixed to mono),
/// resampled to 16 kHz and processed by openSMILE, several files at once on all cores. Output
/// goes to stdout in the order the files were given; a file that cannot be read is reported on
/// stderr and skipped, and the exit status is then 1.
///
/// JSON Lines (default): {"file","t_start","t_end","voiced","features":{openSMILE name: value}}
/// where t_start/t_end are seconds and voiced is the share of 10 ms frames with a pitch.
#[derive(Args)]
pub struct ExtractArgs {
    /// Feature set: eGeMAPSv02 (88 functionals) or ComParE 2016 (6373).
    #[arg(long = "features", value_parser = super::choice::<FeatureSet>(), default_value = "egemaps")]
    set: FeatureSet,
    /// Window length in seconds, or "whole" for one vector per file.
    #[arg(long, default_value = "whole", value_parser = super::parse_window, allow_negative_numbers = true)]
    window: super::WindowArg,
    /// Hop between windows in seconds (default: the window length, no overlap).
    #[arg(long, allow_negative_numbers = true)]
    hop: Option<f64>,
    /// Output format.
    #[arg(long, value_parser = super::choice::<Format>(), default_value = "jsonl")]
    format: Format,
    /// Files processed at once, 1 to 256 (default: one per core). With at least two of these
    /// threads per file, each file's features are computed by two openSMILE threads (same
    /// values, sooner).
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
    /// Audio files; `-` reads a stream from stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    stdin: super::StdinArgs,
}

pub fn run(args: ExtractArgs, strict: bool) -> anyhow::Result<ExitCode> {
    super::stdin_once(&args.files)?;
    let decode = args.stdin.decode_options(&args.files, strict)?;
    let windowing = super::windowing(args.window, args.hop)?;
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(jobs))
            .build_global()
            .context("thread pool")?;
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let recipe = Recipe::raw(args.set, windowing);
    let summary = extract_all(&args.files, recipe, decode, args.format, &mut out)?;
    log::info!(
        "{} files, {} windows, {} failed",
        summary.files,
        summary.windows,
        summary.failed
    );
    if summary.failed > 0 {
        log::error!(
            "{} of {} could not be extracted",
            summary.failed,
            serd::logging::count(summary.files, "file", "files")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Output format of `serd extract`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// One JSON object per window: {"file","t_start","t_end","voiced","features":{name: value}}.
    Jsonl,
    /// A header line, then one row per window: file,t_start,t_end,voiced,<features...>.
    Csv,
}

impl serd::choice::Choice for Format {
    const ALL: &'static [(Format, &'static str, &'static str)] = &[
        (
            Format::Jsonl,
            "jsonl",
            "One JSON object per window: {\"file\",\"t_start\",\"t_end\",\"voiced\",\"features\":{name: value}}",
        ),
        (
            Format::Csv,
            "csv",
            "A header line, then one row per window: file,t_start,t_end,voiced,<features...>",
        ),
    ];
}

/// What `serd extract` did.
#[derive(Debug, Default)]
struct Summary {
    files: usize,
    failed: usize,
    windows: usize,
}

/// Extracts every file in parallel and writes the windows to `out` in input order. A file that
/// fails is reported on stderr (one line: path and problem) and skipped; the others go on. Each
/// file's features are computed on one or two threads ([`threads_per_file`]).
fn extract_all(
    files: &[PathBuf],
    recipe: Recipe,
    decode: DecodeOptions,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<Summary> {
    let names = feature_names(recipe.set).map_err(io::Error::other)?;
    let progress = progress_bar(files.len());
    let cancel = AtomicBool::new(false);
    let how = Extraction::new(decode, threads_per_file(files.len()));
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut summary = Summary {
        files: files.len(),
        ..Summary::default()
    };
    if format == Format::Csv {
        write_csv_header(out, &names).map_err(writing)?;
    }
    std::thread::scope(|scope| {
        scope.spawn(|| extract_each(files, recipe, &how, &cancel, tx));
        let output = Output {
            out,
            format,
            names: &names,
        };
        let written = write_in_order(&rx, files, output, &progress, &mut summary).map_err(writing);
        if written.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        progress.finish_and_clear();
        written
    })?;
    Ok(summary)
}

/// Extracts `files` on rayon's threads, sending each file's windows as they come and then its
/// outcome, tagged with its place among `files`. Once `cancel` is set, files not begun are left.
fn extract_each(
    files: &[PathBuf],
    recipe: Recipe,
    how: &Extraction,
    cancel: &AtomicBool,
    tx: Sender<(usize, Piece)>,
) {
    files
        .par_iter()
        .enumerate()
        .for_each_with(tx, |tx, (i, path)| {
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            let result = stream_with(path, recipe, how, &mut |w| {
                tx.send((i, Piece::Window(w)))
                    .map_err(|_| FileError::Stopped)
            });
            let _ = tx.send((i, Piece::Done(result)));
        });
}

/// Where the windows are written, and how.
struct Output<'a> {
    out: &'a mut dyn Write,
    format: Format,
    /// The features' names, in the order of each window's values.
    names: &'a [String],
}

/// Writes the pieces from `rx` in input order. They arrive in completion order: the first file
/// not yet done is written as its windows come (so one long file streams, in flat memory); later
/// files wait for it. Windows and failures are counted in `summary`.
fn write_in_order(
    rx: &Receiver<(usize, Piece)>,
    files: &[PathBuf],
    output: Output,
    progress: &ProgressBar,
    summary: &mut Summary,
) -> io::Result<()> {
    let Output { out, format, names } = output;
    let mut pending: BTreeMap<usize, Pending> = BTreeMap::new();
    let mut next = 0;
    for (i, piece) in rx.iter() {
        let entry = pending.entry(i).or_default();
        match piece {
            Piece::Window(w) => entry.windows.push(w),
            Piece::Done(result) => entry.done = Some(result),
        }
        while let Some(entry) = pending.get_mut(&next) {
            let path = &files[next];
            write_windows(out, format, path, &entry.windows, names)?;
            summary.windows += entry.windows.len();
            entry.windows.clear();
            let Some(done) = entry.done.take() else {
                break;
            };
            pending.remove(&next);
            report_done(path, done, progress, summary);
            progress.inc(1);
            next += 1;
        }
    }
    out.flush()
}

/// Says what became of a file whose windows are all written: a warning when it gave none, an
/// error (counted in `summary`) when it failed.
fn report_done(
    path: &Path,
    done: Result<Streamed, FileError>,
    progress: &ProgressBar,
    summary: &mut Summary,
) {
    match done {
        Ok(streamed) if streamed.windows == 0 => progress.suspend(|| {
            log::warn!(
                "{}: {:.2} s of audio gives no complete window (openSMILE needs a little more \
                 than the window, for the frames that end it): no output",
                path.display(),
                streamed.seconds
            )
        }),
        Ok(_) => {}
        Err(e) => {
            summary.failed += 1;
            progress.suspend(|| log::error!("{}: {e}", path.display()));
        }
    }
}

/// What a worker sends about file `i`: each window, then the outcome.
enum Piece {
    Window(Window),
    Done(Result<Streamed, FileError>),
}

/// A file's windows not written yet, and its outcome once known.
#[derive(Default)]
struct Pending {
    windows: Vec<Window>,
    done: Option<Result<Streamed, FileError>>,
}

fn progress_bar(len: usize) -> ProgressBar {
    // indicatif draws only when stderr is a terminal.
    let bar = ProgressBar::new(len as u64);
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
                let record = Record {
                    file: &file,
                    t_start: microseconds(w.t_start),
                    t_end: microseconds(w.t_end),
                    voiced: w.voiced,
                    features: Features {
                        names,
                        values: &w.features,
                    },
                };
                record.serialize(&mut serde_json::Serializer::with_formatter(
                    &mut *out,
                    PlainNumbers,
                ))?;
                out.write_all(b"\n")?;
            }
            Format::Csv => {
                write!(
                    out,
                    "{},{},{},{}",
                    csv_field(&file),
                    microseconds(w.t_start),
                    microseconds(w.t_end),
                    csv_number(w.voiced)
                )?;
                for value in &w.features {
                    write!(out, ",{}", csv_number(*value))?;
                }
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// A failed write to the output (stdout), said as such; its kind is kept (a closed pipe is not
/// an error).
fn writing(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("writing to stdout: {e}"))
}

fn write_csv_header(out: &mut dyn Write, names: &[String]) -> io::Result<()> {
    write!(out, "file,t_start,t_end,voiced")?;
    for name in names {
        write!(out, ",{}", csv_field(name))?;
    }
    out.write_all(b"\n")
}

/// One line of `--format jsonl`.
#[derive(Serialize)]
struct Record<'a> {
    file: &'a str,
    t_start: f64,
    t_end: f64,
    voiced: f32,
    features: Features<'a>,
}

/// The functionals as a JSON object, name: value, in openSMILE's order.
struct Features<'a> {
    names: &'a [String],
    values: &'a [f32],
}

impl Serialize for Features<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.names.len()))?;
        for (name, value) in self.names.iter().zip(self.values) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// serde_json's compact JSON with numbers as Rust's `Display` writes them: the shortest text
/// that reads back as the same value, without an exponent (`0.0000012`, `1`, `2.05`), as in the
/// CSV. NaN and infinities are `null` (serde_json's rule), which JSON has no number for.
struct PlainNumbers;

impl serde_json::ser::Formatter for PlainNumbers {
    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        write!(writer, "{value}")
    }

    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        write!(writer, "{value}")
    }
}

/// A value in a CSV row: its `Display` text, empty when not finite, which CSV readers (pandas,
/// R, spreadsheets) take for a missing value.
fn csv_number(v: f32) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        String::new()
    }
}

/// Seconds to the microsecond, without float noise (2.0500000000000003 → 2.05).
fn microseconds(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(format: Format, window: Window) -> String {
        let names = ["a".to_string(), "b \"q\"".to_string(), "c".to_string()];
        let mut out = Vec::new();
        write_windows(
            &mut out,
            format,
            Path::new("x,\"y\".wav"),
            &[window],
            &names,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rows_keep_numbers_plain_and_mark_what_is_not_a_number() {
        let window = Window {
            t_start: 0.1 + 0.2,
            t_end: 2.0500000000000003,
            voiced: f32::NAN,
            features: vec![1.0, 1.2e-7, f32::INFINITY],
        };
        assert_eq!(
            written(Format::Jsonl, window.clone()),
            r#"{"file":"x,\"y\".wav","t_start":0.3,"t_end":2.05,"voiced":null,"features":{"a":1,"b \"q\"":0.00000012,"c":null}}"#
                .to_string()
                + "\n"
        );
        assert_eq!(
            written(Format::Csv, window),
            "\"x,\"\"y\"\".wav\",0.3,2.05,,1,0.00000012,\n"
        );
    }
}
