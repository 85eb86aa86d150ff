//! Labelled speech corpora as data sources for `serd train` and `serd eval`.
//!
//! A data source (`--data SRC`) is either a folder holding one of the known corpora or a CSV
//! manifest. Folders are recognised by their file names, not by a configuration file: the
//! published corpora are distributed with fixed naming schemes that carry the emotion and the
//! speaker (RAVDESS `03-01-05-01-02-01-12.wav`, EmoDB `03a01Wa.wav`, ...), so a user can point
//! serd at a download without writing anything. [`load`] scans the folder for audio files, picks
//! the scheme most of them follow, and turns each file into an [`Item`]. Files of a recognised
//! corpus whose names do not follow its scheme are reported as [`Skipped`], not guessed at.
//!
//! Only serd's five classes are kept; other corpus labels (calm, fear, disgust, boredom, ...) are
//! left out and counted per original label, so a run can say what it did not use.
//!
//! Speaker ids are namespaced by corpus (`ravdess:01`, `emodb:03`, `manifest:NAME:spk`): speaker
//! numbers repeat across corpora, and grouped (speaker-independent) folds must never merge two
//! people, or split one, because two corpora happen to share a number.
//!
//! Nothing is decoded here: this module only decides which files are used, with which label,
//! spoken by whom. Items are sorted by path so that every run sees the same order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::labels::Emotion;
use crate::logging::count;

mod manifest;
mod names;
mod shemo;
#[cfg(test)]
mod tests;
mod walk;

use manifest::*;
use names::*;
use shemo::*;
use walk::*;

/// The kind of a data source: one of the known corpora, or a CSV manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ravdess,
    EmoDb,
    Tess,
    CremaD,
    Shemo,
    Esd,
    Savee,
    Manifest,
}

impl Kind {
    /// The corpora recognised from folder contents, in the order they are tried.
    pub const CORPORA: [Kind; 7] = [
        Kind::Ravdess,
        Kind::EmoDb,
        Kind::Tess,
        Kind::CremaD,
        Kind::Shemo,
        Kind::Esd,
        Kind::Savee,
    ];

    /// The name as its publishers write it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ravdess => "RAVDESS",
            Kind::EmoDb => "EmoDB",
            Kind::Tess => "TESS",
            Kind::CremaD => "CREMA-D",
            Kind::Shemo => "ShEMO",
            Kind::Esd => "ESD",
            Kind::Savee => "SAVEE",
            Kind::Manifest => "CSV manifest",
        }
    }

    /// Lowercase id, the prefix of speaker ids and of [`Item::corpus`].
    pub fn id(self) -> &'static str {
        match self {
            Kind::Ravdess => "ravdess",
            Kind::EmoDb => "emodb",
            Kind::Tess => "tess",
            Kind::CremaD => "cremad",
            Kind::Shemo => "shemo",
            Kind::Esd => "esd",
            Kind::Savee => "savee",
            Kind::Manifest => "manifest",
        }
    }

    /// An example of the layout, for messages.
    fn layout(self) -> &'static str {
        match self {
            Kind::Ravdess => "Actor_NN/MM-VV-EE-II-SS-RR-AA.wav",
            Kind::EmoDb => "wav/03a01Fa.wav",
            Kind::Tess => "OAF_angry/OAF_back_angry.wav",
            Kind::CremaD => "AudioWAV/1001_DFA_ANG_XX.wav",
            Kind::Shemo => "female/F01A01.wav",
            Kind::Esd => "0011/Angry/0011_000351.wav",
            Kind::Savee => "AudioData/DC/a01.wav or DC_a01.wav",
            Kind::Manifest => "a .csv file with path,label[,speaker]",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One labelled recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The audio file: under the corpus folder as given, or as a manifest names it (relative
    /// paths joined to the manifest's folder).
    pub path: PathBuf,
    pub label: Emotion,
    /// Namespaced speaker id, e.g. `ravdess:01`, `manifest:train:spk7`.
    pub speaker: String,
    /// The namespace: a corpus id (`ravdess`) or `manifest:NAME` (NAME: the manifest's stem).
    pub corpus: String,
}

/// A file that could not be used, and why: reported and skipped, wherever that happens (loading a
/// corpus, extracting its features) and in the reports (`eval`, `train`, `metrics.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Written as text, like every path serd writes (lossy for names that are not UTF-8).
    #[serde(serialize_with = "path_as_text")]
    pub path: PathBuf,
    pub error: String,
}

fn path_as_text<S: serde::Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// One loaded data source.
#[derive(Clone, Debug)]
pub struct Source {
    /// The folder or manifest as given.
    pub root: PathBuf,
    pub kind: Kind,
    /// The speaker namespace (see [`Item::corpus`]).
    pub corpus: String,
    /// Usable items, sorted by path.
    pub items: Vec<Item>,
    /// Files left out because their label is not one of the five classes: original label → count.
    pub left_out: BTreeMap<String, usize>,
    /// Files that could not be used.
    pub problems: Vec<Skipped>,
    /// Usable items with no speaker given (manifest rows without one): each is its own speaker.
    pub speakerless: usize,
}

/// What one source contributed to a [`Dataset`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    pub root: PathBuf,
    pub kind: Kind,
    pub corpus: String,
    /// Items used from this source.
    pub items: usize,
    pub speakers: usize,
    /// Items per class (classes with no items are absent).
    pub counts: BTreeMap<Emotion, usize>,
    pub left_out: BTreeMap<String, usize>,
    pub problems: Vec<Skipped>,
    /// See [`Source::speakerless`]; absent when 0.
    #[serde(skip_serializing_if = "crate::model_dir::is_zero")]
    pub speakerless: usize,
}

/// Items from all data sources of a run.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// All usable items, each file once, sorted by path.
    pub items: Vec<Item>,
    /// One summary per source, in the order given.
    pub sources: Vec<SourceSummary>,
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{}: no such file or folder", .0.display())]
    Missing(PathBuf),
    #[error("{}: not a data source (expected a corpus folder or a .csv manifest)", .0.display())]
    NotASource(PathBuf),
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: not a recognised corpus: {detail}", path.display())]
    Unrecognised { path: PathBuf, detail: String },
    #[error("{}: no usable files in this {kind} source ({detail})", path.display())]
    Empty {
        path: PathBuf,
        kind: Kind,
        detail: String,
    },
    #[error("{}: the manifest has no {column:?} column (header: {header})", path.display())]
    MissingColumn {
        path: PathBuf,
        column: &'static str,
        header: String,
    },
    #[error("{}: malformed manifest: {detail}", path.display())]
    Manifest { path: PathBuf, detail: String },
    #[error("{}: unusable relabelling JSON: {detail}", path.display())]
    Json { path: PathBuf, detail: String },
    #[error("no data sources given")]
    NoSources,
}

/// Loads one data source: a corpus folder or a CSV manifest.
///
/// Fails when the path is missing, is neither a folder nor a `.csv` file, follows no known
/// layout, or yields no usable file.
pub fn load(path: &Path) -> Result<Source, CorpusError> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CorpusError::Missing(path.to_path_buf()),
        _ => CorpusError::Read {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    let mut source = if meta.is_dir() {
        load_corpus(path)?
    } else if meta.is_file() && has_extension(path, &["csv"]) {
        load_manifest(path)?
    } else {
        return Err(CorpusError::NotASource(path.to_path_buf()));
    };
    source.items.sort_by(|a, b| a.path.cmp(&b.path));
    if source.items.is_empty() {
        return Err(CorpusError::Empty {
            path: path.to_path_buf(),
            kind: source.kind,
            detail: empty_detail(&source.left_out, &source.problems),
        });
    }
    let summary = source.summary();
    log::info!(
        "{}: {} with {} files from {} speakers{}{}",
        path.display(),
        source.kind,
        summary.items,
        summary.speakers,
        if source.left_out.is_empty() {
            String::new()
        } else {
            format!("; {}", left_out_detail(&source.left_out))
        },
        if source.problems.is_empty() {
            String::new()
        } else {
            format!(
                "; {} unusable",
                count(source.problems.len(), "file", "files")
            )
        },
    );
    if let Some(first) = source.problems.first() {
        log::warn!(
            "{}: {} cannot be used (first: {}: {})",
            path.display(),
            count(source.problems.len(), "file", "files"),
            first.path.display(),
            first.error
        );
    }
    Ok(source)
}

/// Loads and combines several data sources. A file reached through more than one source is
/// used once (with the label of the first) and reported as a problem of the later source.
pub fn load_all(paths: &[PathBuf]) -> Result<Dataset, CorpusError> {
    if paths.is_empty() {
        return Err(CorpusError::NoSources);
    }
    let mut seen: HashMap<PathBuf, (Emotion, PathBuf)> = HashMap::new();
    let mut items = Vec::new();
    let mut sources = Vec::new();
    let mut namespaces: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in paths {
        let mut source = load(path)?;
        if source.kind == Kind::Manifest {
            let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            let earlier = namespaces.insert(source.corpus.clone(), canonical.clone());
            if let Some(other) = earlier.filter(|other| *other != canonical) {
                log::warn!(
                    "{} and {} share the speaker namespace {:?}: equal speaker ids in them count as one person",
                    other.display(),
                    path.display(),
                    source.corpus
                );
            }
        }
        let mut kept = Vec::with_capacity(source.items.len());
        for item in std::mem::take(&mut source.items) {
            let key = fs::canonicalize(&item.path).unwrap_or_else(|_| item.path.clone());
            match seen.get(&key) {
                Some((label, first)) => {
                    let error = if *label == item.label {
                        format!("also in {}; used once", first.display())
                    } else {
                        format!(
                            "also in {} as {label}; used once, as {label} (not {})",
                            first.display(),
                            item.label
                        )
                    };
                    source.problems.push(Skipped {
                        path: item.path,
                        error,
                    });
                }
                None => {
                    seen.insert(key, (item.label, path.clone()));
                    kept.push(item);
                }
            }
        }
        source.items = kept;
        sources.push(source.summary());
        items.append(&mut source.items);
    }
    // Not empty: `load` refuses empty sources, and the first source's files are all new.
    items.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Dataset { items, sources })
}

impl Source {
    /// Counts of what this source holds.
    pub fn summary(&self) -> SourceSummary {
        SourceSummary {
            root: self.root.clone(),
            kind: self.kind,
            corpus: self.corpus.clone(),
            items: self.items.len(),
            speakers: speaker_count(&self.items),
            counts: class_counts(&self.items),
            left_out: self.left_out.clone(),
            problems: self.problems.clone(),
            speakerless: self.speakerless,
        }
    }

    fn new(root: &Path, kind: Kind, corpus: String) -> Source {
        Source {
            root: root.to_path_buf(),
            kind,
            corpus,
            items: Vec::new(),
            left_out: BTreeMap::new(),
            problems: Vec::new(),
            speakerless: 0,
        }
    }

    fn keep(&mut self, path: PathBuf, label: Emotion, speaker: &str) {
        self.items.push(Item {
            path,
            label,
            speaker: format!("{}:{speaker}", self.corpus),
            corpus: self.corpus.clone(),
        });
    }

    fn leave_out(&mut self, label: &str) {
        *self.left_out.entry(label.to_string()).or_default() += 1;
    }

    fn problem(&mut self, path: PathBuf, error: String) {
        self.problems.push(Skipped { path, error });
    }
}

impl Dataset {
    /// Items per class (classes with no items are absent).
    pub fn counts(&self) -> BTreeMap<Emotion, usize> {
        class_counts(&self.items)
    }

    /// Number of distinct speakers.
    pub fn speakers(&self) -> usize {
        speaker_count(&self.items)
    }

    /// Left-out counts of all sources together.
    pub fn left_out(&self) -> BTreeMap<String, usize> {
        let mut all = BTreeMap::new();
        for source in &self.sources {
            for (label, n) in &source.left_out {
                *all.entry(label.clone()).or_default() += n;
            }
        }
        all
    }

    /// Files of all sources that could not be used.
    pub fn problems(&self) -> impl Iterator<Item = &Skipped> {
        self.sources.iter().flat_map(|s| s.problems.iter())
    }
}

fn class_counts(items: &[Item]) -> BTreeMap<Emotion, usize> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item.label).or_default() += 1;
    }
    counts
}

fn speaker_count(items: &[Item]) -> usize {
    items
        .iter()
        .map(|i| i.speaker.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

/// `calm 96, fearful 192`.
fn format_counts(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(label, n)| format!("{label} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The labels left out, and the classes a label must be one of.
fn left_out_detail(left_out: &BTreeMap<String, usize>) -> String {
    let classes: Vec<&str> = Emotion::ALL.iter().map(|e| e.name()).collect();
    format!(
        "left out by label: {} (a label must be one of {})",
        format_counts(left_out),
        classes.join(", ")
    )
}

fn empty_detail(left_out: &BTreeMap<String, usize>, problems: &[Skipped]) -> String {
    let mut parts = Vec::new();
    if !left_out.is_empty() {
        parts.push(left_out_detail(left_out));
    }
    if let Some(first) = problems.first() {
        parts.push(format!(
            "{} unusable, first {}: {}",
            count(problems.len(), "file", "files"),
            first.path.display(),
            first.error
        ));
    }
    if parts.is_empty() {
        "it lists no files".to_string()
    } else {
        parts.join("; ")
    }
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        _ => e.to_string(),
    }
}
