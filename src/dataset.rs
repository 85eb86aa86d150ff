//! Data loading for `serd train` and `serd eval`: corpus items → feature windows (the same
//! extraction path as `serd listen`, cached, parallel), clean and under simulated recording
//! conditions ([`crate::conditions`]).
//!
//! Conditioned copies come in two kinds: augmented copies of training files (random conditions,
//! [`crate::conditions::draw`]) and test copies (the conditions a report asks for). Each copy has
//! its own seed, derived from the run's seed, the kind, the file's path as given (so the same
//! corpus named by another path gets other noise instances) and the copy number (an augmented
//! copy) or the condition's text (a test copy), so noise instances and rooms differ between
//! copies, and test copies never reuse a training copy's.
//! Babble is mixed from recordings the caller allows ([`Job::babble`]): in training never the
//! test fold's speakers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::cache::Cache;
use crate::conditions::Condition;
use crate::corpus::{Dataset, Item, Skipped};
use crate::extract::{Conditioned, Recipe};
use crate::features::Window;
use crate::files::{fnv1a, FNV_OFFSET};
use crate::labels::Emotion;
use crate::rng::Rng;

/// Talkers mixed into one babble noise.
pub const BABBLE_TALKERS: usize = 4;

/// The features of one labelled file.
pub struct Labelled {
    pub path: PathBuf,
    pub label: Emotion,
    pub speaker: String,
    /// The data source it came from ([`crate::corpus::Item::corpus`]): what `--cv corpus`
    /// holds out.
    pub corpus: String,
    /// The file as recorded.
    pub windows: Vec<Window>,
    /// Augmented copies (random conditions), used only when the file is in a training part.
    pub augmented: Vec<Vec<Window>>,
    /// The file under each test condition, in the order asked; empty where extraction failed.
    pub conditions: Vec<Vec<Window>>,
}

/// Extracts (or reads from the cache) the features of every item, in parallel. Files that fail
/// are returned as skipped; the others are kept in input order. Also returns the cache hits.
pub fn features(
    items: &[Item],
    recipe: Recipe,
    cache: &Cache,
) -> (Vec<Labelled>, Vec<Skipped>, usize) {
    let progress = bar(items.len() as u64, "features");
    let hits = AtomicUsize::new(0);
    let results: Vec<Result<Labelled, (PathBuf, SkipReason)>> = items
        .par_iter()
        .map(|item| {
            let result = cache.windows(&item.path, recipe, None);
            progress.inc(1);
            match result {
                Ok((windows, hit)) if !windows.is_empty() => {
                    hits.fetch_add(usize::from(hit), Ordering::Relaxed);
                    Ok(Labelled {
                        path: item.path.clone(),
                        label: item.label,
                        speaker: item.speaker.clone(),
                        corpus: item.corpus.clone(),
                        windows,
                        augmented: Vec::new(),
                        conditions: Vec::new(),
                    })
                }
                Ok(_) => Err((item.path.clone(), SkipReason::TooShort)),
                Err(e) => Err((item.path.clone(), SkipReason::Failed(e.to_string()))),
            }
        })
        .collect();
    progress.finish_and_clear();
    let (mut ok, mut skipped) = (Vec::new(), Vec::new());
    let mut short = 0;
    for r in results {
        match r {
            Ok(l) => ok.push(l),
            Err((path, reason)) => {
                // Short files are expected with long windows: one summary line, details at -v.
                if reason == SkipReason::TooShort {
                    short += 1;
                    log::info!("{}: {reason} (skipped)", path.display());
                } else {
                    log::warn!("{}: {reason} (skipped)", path.display());
                }
                skipped.push(Skipped {
                    path,
                    error: reason.to_string(),
                });
            }
        }
    }
    if short > 0 {
        log::warn!("{short} files are shorter than one window and were left out (-v lists them)");
    }
    (ok, skipped, hits.into_inner())
}

/// Why a file's features cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// It gave no window: expected of short files with long windows.
    #[error("shorter than one window")]
    TooShort,
    /// Its extraction failed, as said.
    #[error("{0}")]
    Failed(String),
}

/// The files a run could not use, for reports: the data sources' problems, then the files whose
/// features failed.
pub fn skipped_report(dataset: &Dataset, skipped: &[Skipped]) -> Vec<Skipped> {
    dataset.problems().chain(skipped).cloned().collect()
}

/// Which copy of a file a [`Job`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyKind {
    /// The n-th augmented copy.
    Augmented(usize),
    /// The file under the n-th test condition.
    Test(usize),
}

/// One conditioned copy of one file to extract.
pub struct Job {
    pub file: usize,
    pub copy: CopyKind,
    pub condition: Condition,
    pub seed: u64,
    /// Recordings its babble may be mixed from.
    pub babble: Vec<PathBuf>,
}

/// A seed for one copy of one file, from the run's seed: the same run gives the same copies, and
/// augmented and test copies never share a noise instance or a room.
pub fn copy_seed(seed: u64, copy: CopyKind, condition: Option<&Condition>, path: &Path) -> u64 {
    // A test copy's seed follows its condition, not its place on the command line.
    let tag = match (copy, condition) {
        (CopyKind::Augmented(n), _) => format!("augment/{n}"),
        (CopyKind::Test(_), Some(c)) => format!("test/{c}"),
        (CopyKind::Test(n), None) => format!("test/{n}"),
    };
    let h = fnv1a(FNV_OFFSET, &seed.to_le_bytes());
    let h = fnv1a(h, tag.as_bytes());
    fnv1a(h, path.as_os_str().as_encoded_bytes())
}

/// Up to [`BABBLE_TALKERS`] distinct recordings for the babble of `files[i]`, of distinct speakers
/// where possible, drawn with `rng` from the files `allowed` and never of the file's own speaker;
/// empty when there are none.
pub fn talkers(
    files: &[Labelled],
    i: usize,
    allowed: impl Fn(usize) -> bool,
    rng: &mut Rng,
) -> Vec<PathBuf> {
    let mut pool: Vec<usize> = (0..files.len())
        .filter(|&j| allowed(j) && files[j].speaker != files[i].speaker)
        .collect();
    if pool.is_empty() {
        return Vec::new();
    }
    // Distinct recordings, of distinct speakers as far as the pool allows.
    rng.shuffle(&mut pool);
    let mut chosen: Vec<usize> = Vec::new();
    for &j in &pool {
        if chosen.len() < BABBLE_TALKERS
            && chosen.iter().all(|&c| files[c].speaker != files[j].speaker)
        {
            chosen.push(j);
        }
    }
    for &j in &pool {
        if chosen.len() < BABBLE_TALKERS && !chosen.contains(&j) {
            chosen.push(j);
        }
    }
    chosen.iter().map(|&j| files[j].path.clone()).collect()
}

/// Every file under every condition in `conditions` ([`CopyKind::Test`]), seeded from `seed`, its
/// babble talkers drawn from the files `allowed(file, talker)` accepts.
pub fn test_copies(
    files: &[Labelled],
    conditions: &[Condition],
    seed: u64,
    allowed: impl Fn(usize, usize) -> bool,
) -> Vec<Job> {
    let speakers: std::collections::HashSet<_> = files.iter().map(|f| &f.speaker).collect();
    if speakers.len() <= BABBLE_TALKERS && conditions.iter().any(Condition::needs_babble) {
        log::warn!(
            "babble mixes {BABBLE_TALKERS} talkers of other speakers, and the data has {} \
             speakers: talkers repeat, so it is not the {BABBLE_TALKERS}-voice babble of serd's figures",
            speakers.len()
        );
    }
    let mut jobs = Vec::new();
    for (i, file) in files.iter().enumerate() {
        for (n, condition) in conditions.iter().enumerate() {
            let copy = CopyKind::Test(n);
            let seed = copy_seed(seed, copy, Some(condition), &file.path);
            let babble = talkers(files, i, |j| allowed(i, j), &mut Rng::new(seed));
            jobs.push(Job {
                file: i,
                copy,
                condition: condition.clone(),
                seed,
                babble,
            });
        }
    }
    jobs
}

/// Extracts every job's copy (from the cache when there) and stores it in its file: a failed copy
/// is reported once and left out (an augmented copy) or left empty (a test copy). Returns the
/// cache hits.
pub fn add_copies(files: &mut [Labelled], jobs: &[Job], recipe: Recipe, cache: &Cache) -> usize {
    if jobs.is_empty() {
        return 0;
    }
    let tests = jobs
        .iter()
        .filter_map(|j| match j.copy {
            CopyKind::Test(n) => Some(n + 1),
            CopyKind::Augmented(_) => None,
        })
        .max()
        .unwrap_or(0);
    for f in files.iter_mut() {
        f.conditions = vec![Vec::new(); tests];
    }
    let progress = bar(jobs.len() as u64, "conditioned copies");
    let hits = AtomicUsize::new(0);
    let shared: &[Labelled] = files;
    let results: Vec<_> = jobs
        .par_iter()
        .map(|job| {
            let conditioned = Conditioned {
                condition: &job.condition,
                seed: job.seed,
                babble: &job.babble,
            };
            let result = cache.windows(&shared[job.file].path, recipe, Some(&conditioned));
            progress.inc(1);
            if let Ok((_, true)) = result {
                hits.fetch_add(1, Ordering::Relaxed);
            }
            result.map(|(windows, _)| windows)
        })
        .collect();
    progress.finish_and_clear();
    // Failures are summed up per condition (one line each; every file at -v): a condition that
    // cannot apply (babble with a single speaker) fails for every file alike.
    let mut failed: Vec<(String, usize, String)> = Vec::new();
    for (job, result) in jobs.iter().zip(results) {
        let file = &mut files[job.file];
        match (result, job.copy) {
            (Ok(windows), CopyKind::Augmented(_)) if !windows.is_empty() => {
                file.augmented.push(windows)
            }
            (Ok(windows), CopyKind::Test(n)) => file.conditions[n] = windows,
            (Ok(_), CopyKind::Augmented(_)) => {}
            (Err(e), copy) => {
                log::info!(
                    "{} under {}: {e} (copy left out)",
                    file.path.display(),
                    job.condition
                );
                let what = match copy {
                    CopyKind::Augmented(_) => "augmented copies".to_string(),
                    CopyKind::Test(_) => job.condition.to_string(),
                };
                match failed.iter_mut().find(|(w, _, _)| *w == what) {
                    Some((_, n, _)) => *n += 1,
                    None => failed.push((what, 1, format!("{}: {e}", file.path.display()))),
                }
            }
        }
    }
    for (what, n, first) in failed {
        log::warn!(
            "{what}: {} could not be made and left out (first: {first}; -v lists them)",
            crate::logging::count(n, "copy", "copies")
        );
    }
    hits.into_inner()
}

/// Progress of long work on stderr: a bar when stderr is a terminal; otherwise (a log file, a
/// service's journal, CI) an info line (`-v`) at each tenth of the way (each step when there are
/// at most ten: a fold, a member) and one at the end, since a bar is only drawn on a terminal and
/// the work would say nothing until it ends.
pub fn bar(len: u64, what: &str) -> Progress {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}}/{{len}} [{{bar:30}}] {{elapsed}} (eta {{eta}}) {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    Progress {
        bar,
        what: what.to_string(),
        lines: !std::io::stderr().is_terminal(),
        logged: std::sync::atomic::AtomicU64::new(0),
        message: std::sync::Mutex::new(String::new()),
    }
}

/// [`bar`]'s progress: the bar's methods, and log lines where no bar is drawn.
pub struct Progress {
    bar: indicatif::ProgressBar,
    what: String,
    /// stderr is not a terminal: log lines instead of the bar.
    lines: bool,
    /// The last step logged, plus one (0: none yet).
    logged: std::sync::atomic::AtomicU64,
    /// The latest message, for the lines.
    message: std::sync::Mutex<String>,
}

impl Progress {
    pub fn inc(&self, delta: u64) {
        self.bar.inc(delta);
        self.log_step();
    }

    pub fn set_position(&self, position: u64) {
        self.bar.set_position(position);
        self.log_step();
    }

    pub fn set_message(&self, message: impl Into<std::borrow::Cow<'static, str>>) {
        let message = message.into();
        if self.lines {
            *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message.to_string();
        }
        self.bar.set_message(message);
    }

    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
        if self.lines && self.bar.length().unwrap_or(0) > 0 {
            crate::logging::progress(&format!(
                "{}: done, {} in {}",
                self.what,
                self.bar.position(),
                indicatif::HumanDuration(self.bar.elapsed())
            ));
        }
    }

    /// One line for each new step (a tenth of the way, or every step when there are at most
    /// ten), once, whichever thread gets there.
    fn log_step(&self) {
        use std::sync::atomic::Ordering;
        if !self.lines {
            return;
        }
        let (position, len) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let step = progress_step(position, len);
        let logged = self.logged.load(Ordering::Relaxed);
        if step < logged
            || self
                .logged
                .compare_exchange(logged, step + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let message = self
            .message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        crate::logging::progress(&format!(
            "{} {position}/{len} after {}{}",
            self.what,
            indicatif::HumanDuration(self.bar.elapsed()),
            if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            }
        ));
    }
}

/// The step `position` of `len` is in: the position itself when `len` is at most ten, else the
/// tenth of the way.
fn progress_step(position: u64, len: u64) -> u64 {
    if len <= 10 {
        position
    } else {
        position * 10 / len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_come_at_each_step_or_each_tenth() {
        // Five folds: every fold.
        let steps: Vec<u64> = (0..5).map(|p| progress_step(p, 5)).collect();
        assert_eq!(steps, [0, 1, 2, 3, 4]);
        // 1000 files: eleven distinct steps, 0 to 10.
        let mut steps: Vec<u64> = (0..=1000).map(|p| progress_step(p, 1000)).collect();
        steps.dedup();
        assert_eq!(steps, (0..=10).collect::<Vec<_>>());
        // Logged once per step, whatever the calls (stderr is not a terminal under the tests).
        let progress = bar(1000, "files");
        if progress.lines {
            for _ in 0..1000 {
                progress.inc(1);
            }
            assert_eq!(
                progress.logged.load(std::sync::atomic::Ordering::Relaxed),
                11
            );
        }
    }
}
