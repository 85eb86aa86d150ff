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

/// File extensions taken for audio when scanning a corpus folder (compared case-insensitively).
const AUDIO_EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "aif", "aiff"];

/// How deep a corpus folder is searched; also what stops a loop of symbolic links.
const MAX_DEPTH: usize = 16;

/// SAVEE's four speakers.
const SAVEE_SPEAKERS: [&str; 4] = ["DC", "JE", "JK", "KL"];

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
    /// See [`Source::speakerless`].
    #[serde(skip)]
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
            format!("; left out by label: {}", format_counts(&source.left_out))
        },
        if source.problems.is_empty() {
            String::new()
        } else {
            format!("; {} files unusable", source.problems.len())
        },
    );
    if let Some(first) = source.problems.first() {
        log::warn!(
            "{}: {} files cannot be used (first: {}: {})",
            path.display(),
            source.problems.len(),
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

fn empty_detail(left_out: &BTreeMap<String, usize>, problems: &[Skipped]) -> String {
    let mut parts = Vec::new();
    if !left_out.is_empty() {
        parts.push(format!("left out by label: {}", format_counts(left_out)));
    }
    if let Some(first) = problems.first() {
        parts.push(format!(
            "{} files unusable, first {}: {}",
            problems.len(),
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

// ---------------------------------------------------------------------------------------------
// Corpus folders

/// The label a file name gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    Kept(Emotion),
    /// Outside the five classes: the corpus's own word for it.
    LeftOut(&'static str),
}

/// What a file name says under one naming scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Parsed {
    label: Label,
    /// Speaker id within the corpus, without namespace.
    speaker: String,
}

/// The audio files under a folder, and what could not be searched.
struct Scan {
    audio: Vec<PathBuf>,
    /// `.csv` files directly in the folder, for a hint when nothing is recognised.
    manifests: Vec<PathBuf>,
    problems: Vec<Skipped>,
}

fn scan(root: &Path) -> Result<Scan, CorpusError> {
    let mut found = Scan {
        audio: Vec::new(),
        manifests: Vec::new(),
        problems: Vec::new(),
    };
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    // Folders already searched, by canonical path: a symbolic link back up the tree (or two links
    // to one folder) is searched once, not once per path that reaches it.
    let mut visited = std::collections::HashSet::new();
    while let Some((dir, depth)) = stack.pop() {
        if let Ok(canonical) = fs::canonicalize(&dir) {
            if !visited.insert(canonical) {
                continue;
            }
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if depth == 0 => {
                return Err(CorpusError::Read {
                    path: dir,
                    source: e,
                })
            }
            Err(e) => {
                found.problems.push(Skipped {
                    path: dir,
                    error: format!("cannot read folder: {e}"),
                });
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    found.problems.push(Skipped {
                        path: dir.clone(),
                        error: format!("cannot read folder: {e}"),
                    });
                    continue;
                }
            };
            // Hidden files include the `._NAME.wav` resource forks macOS leaves in archives.
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Follows symbolic links (each folder once, by its canonical path).
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    if has_extension(&path, &AUDIO_EXTENSIONS) {
                        found.problems.push(Skipped {
                            path,
                            error: describe_io(&e),
                        });
                    }
                    continue;
                }
            };
            if meta.is_dir() {
                if depth + 1 < MAX_DEPTH {
                    stack.push((path, depth + 1));
                } else {
                    found.problems.push(Skipped {
                        path,
                        error: format!("folder nested more than {MAX_DEPTH} deep; not searched"),
                    });
                }
            } else if has_extension(&path, &AUDIO_EXTENSIONS) {
                found.audio.push(path);
            } else if depth == 0 && has_extension(&path, &["csv"]) {
                found.manifests.push(path);
            }
        }
    }
    found.audio.sort();
    found.manifests.sort();
    Ok(found)
}

/// The corpus most of the audio files are named like; more than half must be.
fn detect(root: &Path, scan: &Scan) -> Result<Kind, CorpusError> {
    let total = scan.audio.len();
    let hint = match scan.manifests.first() {
        Some(csv) => format!(
            "; to use the manifest {}, pass the .csv file itself",
            csv.display()
        ),
        None => String::new(),
    };
    if total == 0 {
        return Err(CorpusError::Unrecognised {
            path: root.to_path_buf(),
            detail: format!(
                "no audio files ({}) in it{hint}",
                AUDIO_EXTENSIONS.map(|e| format!(".{e}")).join(", ")
            ),
        });
    }
    let mut best = (Kind::CORPORA[0], 0usize);
    for kind in Kind::CORPORA {
        let n = scan
            .audio
            .iter()
            .filter(|p| parse_name(kind, p).is_some())
            .count();
        if n > best.1 {
            best = (kind, n);
        }
    }
    let (kind, matched) = best;
    if matched == 0 {
        let tried = Kind::CORPORA
            .map(|k| format!("{} ({})", k.name(), k.layout()))
            .join(", ");
        return Err(CorpusError::Unrecognised {
            path: root.to_path_buf(),
            detail: format!("none of its {total} audio files is named like any of {tried}{hint}"),
        });
    }
    if matched * 2 <= total {
        return Err(CorpusError::Unrecognised {
            path: root.to_path_buf(),
            detail: format!(
                "only {matched} of its {total} audio files are named like {} ({}); expected most of them{hint}",
                kind.name(),
                kind.layout()
            ),
        });
    }
    Ok(kind)
}

fn load_corpus(root: &Path) -> Result<Source, CorpusError> {
    let scan = scan(root)?;
    let kind = detect(root, &scan)?;
    let mut source = Source::new(root, kind, kind.id().to_string());
    source.problems = scan.problems;
    let relabel = match kind {
        Kind::Shemo => match find_shemo_json(root)? {
            Some(json) => Some(Relabel::read(&json)?),
            None => None,
        },
        _ => None,
    };
    let mut changed = 0usize;
    let mut listed = 0usize;
    for path in scan.audio {
        let Some(parsed) = parse_name(kind, &path) else {
            let error = format!(
                "name does not follow the {} naming ({})",
                kind.name(),
                kind.layout()
            );
            source.problem(path, error);
            continue;
        };
        let mut label = parsed.label;
        if let Some(relabel) = &relabel {
            match relabel.lookup(&path) {
                None => {}
                Some(Ok(new)) => {
                    listed += 1;
                    if new != label {
                        changed += 1;
                        label = new;
                    }
                }
                Some(Err(word)) => {
                    let error = format!(
                        "{} gives it the unknown emotion {word:?}",
                        relabel.path.display()
                    );
                    source.problem(path, error);
                    continue;
                }
            }
        }
        match label {
            Label::Kept(emotion) => source.keep(path, emotion, &parsed.speaker),
            Label::LeftOut(word) => source.leave_out(word),
        }
    }
    if let Some(relabel) = &relabel {
        log::info!(
            "{}: relabelling changed {changed} of the {listed} labels it gives for files found here",
            relabel.path.display()
        );
    }
    Ok(source)
}

/// What `path`'s name says under `kind`'s naming scheme; `None` when it does not follow it.
fn parse_name(kind: Kind, path: &Path) -> Option<Parsed> {
    let stem = path.file_stem()?.to_str()?;
    match kind {
        Kind::Ravdess => parse_ravdess(stem),
        Kind::EmoDb => parse_emodb(stem),
        Kind::Tess => parse_tess(path, stem),
        Kind::CremaD => parse_cremad(stem),
        Kind::Shemo => parse_shemo(stem),
        Kind::Esd => parse_esd(path, stem),
        Kind::Savee => parse_savee(path, stem),
        Kind::Manifest => None,
    }
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `MM-VV-EE-II-SS-RR-AA`, seven two-digit fields; EE the emotion, AA the actor.
fn parse_ravdess(stem: &str) -> Option<Parsed> {
    let fields: Vec<&str> = stem.split('-').collect();
    if fields.len() != 7 || !fields.iter().all(|f| is_digits(f, 2)) {
        return None;
    }
    let label = match fields[2] {
        "01" => Label::Kept(Emotion::Neutral),
        "02" => Label::LeftOut("calm"),
        "03" => Label::Kept(Emotion::Happiness),
        "04" => Label::Kept(Emotion::Sadness),
        "05" => Label::Kept(Emotion::Anger),
        "06" => Label::LeftOut("fearful"),
        "07" => Label::LeftOut("disgust"),
        "08" => Label::Kept(Emotion::Surprise),
        _ => return None,
    };
    Some(Parsed {
        label,
        speaker: fields[6].to_string(),
    })
}

/// `SSTTTEV`: speaker (2 digits), text (letter + 2 digits), emotion letter, version letter.
fn parse_emodb(stem: &str) -> Option<Parsed> {
    let b = stem.as_bytes();
    let shape = b.len() == 7
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2].is_ascii_alphabetic()
        && b[3].is_ascii_digit()
        && b[4].is_ascii_digit()
        && b[6].is_ascii_alphabetic();
    if !shape {
        return None;
    }
    let label = match b[5].to_ascii_uppercase() {
        b'W' => Label::Kept(Emotion::Anger),
        b'L' => Label::LeftOut("boredom"),
        b'E' => Label::LeftOut("disgust"),
        b'A' => Label::LeftOut("fear"),
        b'F' => Label::Kept(Emotion::Happiness),
        b'T' => Label::Kept(Emotion::Sadness),
        b'N' => Label::Kept(Emotion::Neutral),
        _ => return None,
    };
    Some(Parsed {
        label,
        speaker: stem[..2].to_string(),
    })
}

/// `{OAF|YAF}_{word}_{emotion}`; the speaker may also come from the folder (`OAF_angry/`).
fn parse_tess(path: &Path, stem: &str) -> Option<Parsed> {
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() < 3 || parts[1..parts.len() - 1].iter().any(|p| p.is_empty()) {
        return None;
    }
    let label = match parts[parts.len() - 1].to_ascii_lowercase().as_str() {
        "angry" => Label::Kept(Emotion::Anger),
        "disgust" => Label::LeftOut("disgust"),
        "fear" => Label::LeftOut("fear"),
        "happy" => Label::Kept(Emotion::Happiness),
        "neutral" => Label::Kept(Emotion::Neutral),
        "ps" => Label::Kept(Emotion::Surprise),
        "sad" => Label::Kept(Emotion::Sadness),
        _ => return None,
    };
    let tess_speaker = |s: &str| {
        ["OAF", "YAF"]
            .into_iter()
            .find(|k| k.eq_ignore_ascii_case(s))
    };
    let from_folder = || {
        let folder = path.parent()?.file_name()?.to_str()?;
        tess_speaker(folder.split('_').next()?)
    };
    let speaker = tess_speaker(parts[0]).or_else(from_folder)?;
    Some(Parsed {
        label,
        speaker: speaker.to_string(),
    })
}

/// `SSSS_TTT_EEE_II`: speaker 1001..1091, sentence, emotion, intensity.
fn parse_cremad(stem: &str) -> Option<Parsed> {
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() != 4 || !is_digits(parts[0], 4) {
        return None;
    }
    let speaker: u32 = parts[0].parse().ok()?;
    if !(1001..=1091).contains(&speaker)
        || parts[1].len() != 3
        || !parts[1].bytes().all(|b| b.is_ascii_alphabetic())
        || !["LO", "MD", "HI", "XX"]
            .iter()
            .any(|i| i.eq_ignore_ascii_case(parts[3]))
    {
        return None;
    }
    let label = match parts[2].to_ascii_uppercase().as_str() {
        "ANG" => Label::Kept(Emotion::Anger),
        "DIS" => Label::LeftOut("disgust"),
        "FEA" => Label::LeftOut("fear"),
        "HAP" => Label::Kept(Emotion::Happiness),
        "NEU" => Label::Kept(Emotion::Neutral),
        "SAD" => Label::Kept(Emotion::Sadness),
        _ => return None,
    };
    Some(Parsed {
        label,
        speaker: parts[0].to_string(),
    })
}

/// ShEMO's emotion letters (file names), also accepted in relabelling JSON.
fn shemo_letter(letter: u8) -> Option<Label> {
    Some(match letter.to_ascii_uppercase() {
        b'A' => Label::Kept(Emotion::Anger),
        b'W' => Label::Kept(Emotion::Surprise),
        b'H' => Label::Kept(Emotion::Happiness),
        b'S' => Label::Kept(Emotion::Sadness),
        b'N' => Label::Kept(Emotion::Neutral),
        b'F' => Label::LeftOut("fear"),
        _ => return None,
    })
}

/// `GSSENN`: gender F/M, speaker (2 digits), emotion letter, number (2 digits).
fn parse_shemo(stem: &str) -> Option<Parsed> {
    let b = stem.as_bytes();
    let shape = b.len() == 6
        && matches!(b[0].to_ascii_uppercase(), b'F' | b'M')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit();
    if !shape {
        return None;
    }
    Some(Parsed {
        label: shemo_letter(b[3])?,
        speaker: format!("{}{}", b[0].to_ascii_uppercase() as char, &stem[1..3]),
    })
}

/// `SSSS_NNNNNN` in a folder named for the emotion (`Angry/`, possibly `Angry/train/`).
fn parse_esd(path: &Path, stem: &str) -> Option<Parsed> {
    let (speaker, number) = stem.split_once('_')?;
    if !is_digits(speaker, 4) || !is_digits(number, 6) {
        return None;
    }
    let emotion = path
        .ancestors()
        .skip(1)
        .take(3)
        .filter_map(|dir| dir.file_name()?.to_str())
        .find_map(|name| match name.to_ascii_lowercase().as_str() {
            "angry" => Some(Emotion::Anger),
            "happy" => Some(Emotion::Happiness),
            "neutral" => Some(Emotion::Neutral),
            "sad" => Some(Emotion::Sadness),
            "surprise" => Some(Emotion::Surprise),
            _ => None,
        })?;
    Some(Parsed {
        label: Label::Kept(emotion),
        speaker: speaker.to_string(),
    })
}

/// SAVEE's `{prefix}{NN}`: a anger, d disgust, f fear, h happiness, n neutral, sa sadness,
/// su surprise.
fn savee_code(code: &str) -> Option<Label> {
    if code.len() < 3 || !code.is_ascii() {
        return None;
    }
    let (prefix, number) = code.split_at(code.len() - 2);
    if !is_digits(number, 2) {
        return None;
    }
    Some(match prefix.to_ascii_lowercase().as_str() {
        "a" => Label::Kept(Emotion::Anger),
        "d" => Label::LeftOut("disgust"),
        "f" => Label::LeftOut("fear"),
        "h" => Label::Kept(Emotion::Happiness),
        "n" => Label::Kept(Emotion::Neutral),
        "sa" => Label::Kept(Emotion::Sadness),
        "su" => Label::Kept(Emotion::Surprise),
        _ => return None,
    })
}

/// `DC/a01` (speaker folder) or `DC_a01` (flat).
fn parse_savee(path: &Path, stem: &str) -> Option<Parsed> {
    let speaker = |s: &str| {
        SAVEE_SPEAKERS
            .into_iter()
            .find(|k| k.eq_ignore_ascii_case(s))
    };
    if let Some((spk, code)) = stem.split_once('_') {
        return Some(Parsed {
            label: savee_code(code)?,
            speaker: speaker(spk)?.to_string(),
        });
    }
    let folder = path.parent()?.file_name()?.to_str()?;
    Some(Parsed {
        label: savee_code(stem)?,
        speaker: speaker(folder)?.to_string(),
    })
}

/// The relabelling JSON in a ShEMO folder: `modified_shemo.json` first, else any `*.json`
/// whose name contains "shemo".
fn find_shemo_json(root: &Path) -> Result<Option<PathBuf>, CorpusError> {
    let entries = fs::read_dir(root).map_err(|e| CorpusError::Read {
        path: root.to_path_buf(),
        source: e,
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            has_extension(p, &["json"])
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.to_ascii_lowercase().contains("shemo"))
                && p.is_file()
        })
        .collect();
    found.sort();
    let preferred = found.iter().position(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.eq_ignore_ascii_case("modified_shemo.json"))
    });
    let chosen = match preferred {
        Some(i) => found.remove(i),
        None if found.is_empty() => return Ok(None),
        None => found.remove(0),
    };
    if !found.is_empty() {
        log::warn!(
            "{}: using {} for ShEMO labels; ignoring {}",
            root.display(),
            chosen.display(),
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Some(chosen))
}

/// Labels from a ShEMO relabelling JSON, by uppercase file stem.
struct Relabel {
    path: PathBuf,
    /// `Err(word)` for an emotion word that is not understood.
    labels: HashMap<String, Result<Label, String>>,
}

impl Relabel {
    /// Reads the `modified_shemo.json` format (an object keyed by file name, `"F01A01.wav"` or
    /// `"F01A01"`, whose values hold at least `"emotion"`), or the original ShEMO `shemo.json`
    /// (an array of objects with `"id"` and `"emotion"`).
    fn read(path: &Path) -> Result<Relabel, CorpusError> {
        let text = fs::read_to_string(path).map_err(|e| CorpusError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        let json_error = |detail: String| CorpusError::Json {
            path: path.to_path_buf(),
            detail,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| json_error(e.to_string()))?;
        let entries: Vec<(String, &serde_json::Value)> = match &value {
            serde_json::Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            serde_json::Value::Array(list) => list
                .iter()
                .filter_map(|v| Some((v.get("id")?.as_str()?.to_string(), v)))
                .collect(),
            _ => {
                return Err(json_error(
                    "expected an object mapping file names to {\"emotion\": ...}".to_string(),
                ))
            }
        };
        let mut labels = HashMap::new();
        for (key, entry) in entries {
            let Some(word) = entry.get("emotion").and_then(|e| e.as_str()) else {
                continue;
            };
            let stem = Path::new(&key)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(&key)
                .to_ascii_uppercase();
            labels.insert(stem, shemo_word(word).ok_or_else(|| word.to_string()));
        }
        if labels.is_empty() {
            return Err(json_error(
                "no entry has an \"emotion\" field \
                 (expected {\"F01A01.wav\": {\"emotion\": \"anger\", ...}, ...})"
                    .to_string(),
            ));
        }
        Ok(Relabel {
            path: path.to_path_buf(),
            labels,
        })
    }

    fn lookup(&self, file: &Path) -> Option<Result<Label, String>> {
        let stem = file.file_stem()?.to_str()?.to_ascii_uppercase();
        self.labels.get(&stem).cloned()
    }
}

/// An emotion as relabelling JSON writes it: a word or a ShEMO letter.
fn shemo_word(word: &str) -> Option<Label> {
    let word = word.trim().to_ascii_lowercase();
    if word.len() == 1 {
        return shemo_letter(word.as_bytes()[0]);
    }
    Some(match word.as_str() {
        "anger" | "angry" => Label::Kept(Emotion::Anger),
        "surprise" | "surprised" => Label::Kept(Emotion::Surprise),
        "happiness" | "happy" => Label::Kept(Emotion::Happiness),
        "sadness" | "sad" => Label::Kept(Emotion::Sadness),
        "neutral" => Label::Kept(Emotion::Neutral),
        "fear" | "fearful" => Label::LeftOut("fear"),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// CSV manifests

fn load_manifest(path: &Path) -> Result<Source, CorpusError> {
    let bytes = fs::read(path).map_err(|e| CorpusError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        CorpusError::Manifest {
            path: path.to_path_buf(),
            detail: format!("line {line}: not UTF-8 text (save the manifest as UTF-8)"),
        }
    })?;
    let records = parse_csv(&text).map_err(|detail| CorpusError::Manifest {
        path: path.to_path_buf(),
        detail,
    })?;
    let mut records = records
        .into_iter()
        .filter(|(_, fields)| fields.iter().any(|f| !f.trim().is_empty()));
    let Some((_, header)) = records.next() else {
        return Err(CorpusError::Manifest {
            path: path.to_path_buf(),
            detail: "empty; expected a header with path,label[,speaker]".to_string(),
        });
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let require = |name: &'static str| {
        column(name).ok_or_else(|| CorpusError::MissingColumn {
            path: path.to_path_buf(),
            column: name,
            header: header.join(","),
        })
    };
    let path_col = require("path")?;
    let label_col = require("label")?;
    let speaker_col = column("speaker");

    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut source = Source::new(path, Kind::Manifest, format!("manifest:{name}"));
    let base = path.parent().unwrap_or(Path::new(""));
    for (line, fields) in records {
        let field = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
        // A path is taken as written (quotes keep its blanks); labels and speakers are words.
        let (file, label) = (field(path_col), field(label_col).trim());
        if file.is_empty() {
            source.problem(path.to_path_buf(), format!("line {line}: no path"));
            continue;
        }
        if label.is_empty() {
            source.problem(
                path.to_path_buf(),
                format!("line {line}: no label for {file}"),
            );
            continue;
        }
        let Ok(emotion) = label.parse::<Emotion>() else {
            source.leave_out(&label.to_lowercase());
            continue;
        };
        let full = if Path::new(file).is_absolute() {
            PathBuf::from(file)
        } else {
            base.join(file)
        };
        let unusable = match fs::metadata(&full) {
            Ok(meta) if meta.is_file() => None,
            Ok(_) => Some("not a file".to_string()),
            Err(e) => Some(describe_io(&e)),
        };
        if let Some(why) = unusable {
            let error = format!("{why} (line {line} of {})", path.display());
            source.problem(full, error);
            continue;
        }
        let speaker = speaker_col.map(field).unwrap_or("").trim();
        if speaker.is_empty() {
            source.speakerless += 1;
            source.keep(full, emotion, file);
        } else {
            source.keep(full, emotion, speaker);
        }
    }
    Ok(source)
}

/// Splits CSV text (RFC 4180) into records, each with the line it starts on (1-based).
///
/// Fields are separated by commas; a field in double quotes may hold commas, line breaks and
/// doubled quotes (`""` for `"`). Lines end in LF, CRLF or CR. A byte-order mark is skipped.
/// Leniencies: a quote inside an unquoted field, or text after a closing quote, is kept as
/// text. An unterminated quoted field is an error.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = Field::default();
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut quoted_since: Option<usize> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted_since.is_some() {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.text.push('"');
                }
                '"' => {
                    quoted_since = None;
                    field.quoted = Some(field.text.len());
                }
                '\n' => {
                    line += 1;
                    field.text.push(c);
                }
                _ => field.text.push(c),
            }
            continue;
        }
        match c {
            // Only a quote that opens a field (after blanks) makes it a quoted field.
            '"' if field.quoted.is_none() && field.text.trim().is_empty() => {
                field.text.clear();
                quoted_since = Some(line);
            }
            ',' => record.push(std::mem::take(&mut field).finish()),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut field).finish());
                records.push((record_line, std::mem::take(&mut record)));
                line += 1;
                record_line = line;
            }
            _ => field.text.push(c),
        }
    }
    if let Some(start) = quoted_since {
        return Err(format!(
            "unterminated quoted field starting on line {start}"
        ));
    }
    if !field.text.is_empty() || field.quoted.is_some() || !record.is_empty() {
        record.push(field.finish());
        records.push((record_line, record));
    }
    Ok(records)
}

/// A CSV field being read.
#[derive(Default)]
struct Field {
    text: String,
    /// For a quoted field, where its closing quote was in `text`.
    quoted: Option<usize>,
}

impl Field {
    /// The field's value: blanks around it are dropped, those inside quotes kept.
    fn finish(mut self) -> String {
        match self.quoted {
            Some(end) => {
                let after = self.text.split_off(end);
                self.text + after.trim_end()
            }
            None => self.text.trim().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Emotion::{Anger, Happiness, Neutral, Sadness, Surprise};

    /// Creates an empty file (and its folders) under `root`.
    fn touch(root: &Path, rel: &str) -> PathBuf {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"").unwrap();
        path
    }

    fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    /// (file name, label, speaker) of each item, in order.
    fn summary(source: &Source) -> Vec<(String, Emotion, String)> {
        source
            .items
            .iter()
            .map(|i| {
                (
                    i.path.file_name().unwrap().to_string_lossy().into_owned(),
                    i.label,
                    i.speaker.clone(),
                )
            })
            .collect()
    }

    fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    }

    fn row(name: &str, label: Emotion, speaker: &str) -> (String, Emotion, String) {
        (name.to_string(), label, speaker.to_string())
    }

    #[test]
    fn ravdess() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "Actor_01/03-01-01-01-01-01-01.wav",
            "Actor_01/03-01-02-01-01-01-01.wav",
            "Actor_01/03-01-05-02-01-02-01.wav",
            "Actor_02/03-01-08-01-02-01-02.wav",
            "Actor_02/03-01-06-01-02-01-02.wav",
            "Actor_02/03-01-07-01-02-01-02.wav",
            "Actor_02/03-01-03-01-02-01-02.wav",
            "Actor_02/03-01-04-01-02-01-02.wav",
            "Actor_02/notes.wav",
        ] {
            touch(root, name);
        }
        touch(root, "README.md");
        touch(root, "Actor_02/._03-01-04-01-02-01-02.wav");
        let source = load(root).unwrap();
        assert_eq!(source.kind, Kind::Ravdess);
        assert_eq!(source.corpus, "ravdess");
        assert_eq!(
            summary(&source),
            vec![
                row("03-01-01-01-01-01-01.wav", Neutral, "ravdess:01"),
                row("03-01-05-02-01-02-01.wav", Anger, "ravdess:01"),
                row("03-01-03-01-02-01-02.wav", Happiness, "ravdess:02"),
                row("03-01-04-01-02-01-02.wav", Sadness, "ravdess:02"),
                row("03-01-08-01-02-01-02.wav", Surprise, "ravdess:02"),
            ]
        );
        assert!(source.items.iter().all(|i| i.corpus == "ravdess"));
        assert_eq!(
            source.items[0].path,
            root.join("Actor_01/03-01-01-01-01-01-01.wav")
        );
        assert_eq!(
            source.left_out,
            counts(&[("calm", 1), ("disgust", 1), ("fearful", 1)])
        );
        assert_eq!(source.problems.len(), 1);
        assert_eq!(source.problems[0].path, root.join("Actor_02/notes.wav"));
        assert!(source.problems[0].error.contains("RAVDESS"));
    }

    #[test]
    fn emodb() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "wav/03a01Fa.wav",
            "wav/03a01Wa.wav",
            "wav/08b02Tc.wav",
            "wav/16a05Nd.wav",
            "wav/09a02La.wav",
            "wav/10b09Eb.wav",
            "wav/11a04Ac.wav",
        ] {
            touch(root, name);
        }
        touch(root, "silb/03a01Fa.txt");
        let source = load(root).unwrap();
        assert_eq!(source.kind, Kind::EmoDb);
        assert_eq!(
            summary(&source),
            vec![
                row("03a01Fa.wav", Happiness, "emodb:03"),
                row("03a01Wa.wav", Anger, "emodb:03"),
                row("08b02Tc.wav", Sadness, "emodb:08"),
                row("16a05Nd.wav", Neutral, "emodb:16"),
            ]
        );
        assert_eq!(
            source.left_out,
            counts(&[("boredom", 1), ("disgust", 1), ("fear", 1)])
        );
        assert!(source.problems.is_empty());
    }

    #[test]
    fn tess() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "OAF_angry/OAF_back_angry.wav",
            "OAF_Fear/OAF_back_fear.wav",
            "OAF_disgust/OAF_back_disgust.wav",
            "OAF_neutral/OA_bite_neutral.wav",
            "YAF_pleasant_surprise/YAF_bath_ps.wav",
            "YAF_happy/yaf_bath_HAPPY.wav",
            "YAF_sad/YAF_bath_sad.wav",
            "YAF_sad/YAF_bath.wav",
        ] {
            touch(root, name);
        }
        let source = load(root).unwrap();
        assert_eq!(source.kind, Kind::Tess);
        assert_eq!(
            summary(&source),
            vec![
                row("OAF_back_angry.wav", Anger, "tess:OAF"),
                // Speaker from the folder when the file's prefix is not OAF/YAF.
                row("OA_bite_neutral.wav", Neutral, "tess:OAF"),
                row("yaf_bath_HAPPY.wav", Happiness, "tess:YAF"),
                row("YAF_bath_ps.wav", Surprise, "tess:YAF"),
                row("YAF_bath_sad.wav", Sadness, "tess:YAF"),
            ]
        );
        assert_eq!(source.left_out, counts(&[("disgust", 1), ("fear", 1)]));
        assert_eq!(source.problems.len(), 1);
        assert!(source.problems[0].path.ends_with("YAF_bath.wav"));
    }

    #[test]
    fn crema_d() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "AudioWAV/1001_DFA_ANG_XX.wav",
            "AudioWAV/1001_IEO_HAP_HI.wav",
            "AudioWAV/1091_TIE_NEU_XX.wav",
            "AudioWAV/1045_ITS_SAD_LO.wav",
            "AudioWAV/1045_ITS_DIS_MD.wav",
            "AudioWAV/1045_ITS_FEA_MD.wav",
            "AudioWAV/1092_ITS_SAD_LO.wav",
        ] {
            touch(root, name);
        }
        let source = load(root).unwrap();
        assert_eq!(source.kind, Kind::CremaD);
        assert_eq!(
            summary(&source),
            vec![
                row("1001_DFA_ANG_XX.wav", Anger, "cremad:1001"),
                row("1001_IEO_HAP_HI.wav", Happiness, "cremad:1001"),
                row("1045_ITS_SAD_LO.wav", Sadness, "cremad:1045"),
                row("1091_TIE_NEU_XX.wav", Neutral, "cremad:1091"),
            ]
        );
        assert_eq!(source.left_out, counts(&[("disgust", 1), ("fear", 1)]));
        // Speaker 1092 is outside CREMA-D's range.
        assert_eq!(source.problems.len(), 1);
        assert!(source.problems[0].path.ends_with("1092_ITS_SAD_LO.wav"));
    }

    fn shemo_tree(root: &Path) {
        for name in [
            "female/F01A01.wav",
            "female/F01W02.wav",
            "female/F01F03.wav",
            "female/F02H01.wav",
            "male/M12N03.wav",
            "male/M12S04.wav",
        ] {
            touch(root, name);
        }
    }

    #[test]
    fn shemo_without_relabelling() {
        let dir = tempfile::tempdir().unwrap();
        shemo_tree(dir.path());
        let source = load(dir.path()).unwrap();
        assert_eq!(source.kind, Kind::Shemo);
        assert_eq!(
            summary(&source),
            vec![
                row("F01A01.wav", Anger, "shemo:F01"),
                row("F01W02.wav", Surprise, "shemo:F01"),
                row("F02H01.wav", Happiness, "shemo:F02"),
                row("M12N03.wav", Neutral, "shemo:M12"),
                row("M12S04.wav", Sadness, "shemo:M12"),
            ]
        );
        assert_eq!(source.left_out, counts(&[("fear", 1)]));
        assert!(source.problems.is_empty());
    }

    #[test]
    fn shemo_with_modified_labels() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        shemo_tree(root);
        // F01A01 stays anger, F01W02 becomes happiness, F01F03 (fear) becomes neutral,
        // M12N03 becomes fear (left out), M12S04 gets a word serd does not know; F02H01 is not
        // listed; F05A01 is listed but absent.
        write(
            root,
            "modified_shemo.json",
            r#"{
                "F01A01.wav": {"path": "shemo/F01A01.wav", "emotion": "anger"},
                "F01W02.wav": {"path": "shemo/F01W02.wav", "emotion": "happiness"},
                "F01F03.wav": {"emotion": "N"},
                "M12N03.wav": {"emotion": "fear"},
                "M12S04.wav": {"emotion": "contempt"},
                "F05A01.wav": {"emotion": "anger"},
                "F05A02.wav": {"transcript": "no emotion here"}
            }"#,
        );
        // An older file with other labels: modified_shemo.json wins.
        write(
            root,
            "shemo.json",
            r#"[{"id": "F01A01", "emotion": "sad"}]"#,
        );
        let source = load(root).unwrap();
        assert_eq!(source.kind, Kind::Shemo);
        assert_eq!(
            summary(&source),
            vec![
                row("F01A01.wav", Anger, "shemo:F01"),
                row("F01F03.wav", Neutral, "shemo:F01"),
                row("F01W02.wav", Happiness, "shemo:F01"),
                row("F02H01.wav", Happiness, "shemo:F02"),
            ]
        );
        assert_eq!(source.left_out, counts(&[("fear", 1)]));
        assert_eq!(source.problems.len(), 1);
        assert!(source.problems[0].path.ends_with("M12S04.wav"));
        assert!(source.problems[0].error.contains("contempt"));
    }

    /// Symbolic links back up the tree are searched once: three of them used to make the walk
    /// grow as 3^16 (a hang); now the items are those of the real folders, without problems.
    #[test]
    fn folder_loops_through_symbolic_links_are_searched_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "Actor_01/03-01-01-01-01-01-01.wav",
            "Actor_02/03-01-05-01-02-01-02.wav",
        ] {
            touch(root, name);
        }
        for link in ["self", "self2", "self3"] {
            std::os::unix::fs::symlink(".", root.join("Actor_01").join(link)).unwrap();
        }
        std::os::unix::fs::symlink("..", root.join("Actor_02/up")).unwrap();
        let source = load(root).unwrap();
        assert_eq!(source.items.len(), 2);
        assert!(source.problems.is_empty(), "{:?}", source.problems);
    }

    #[test]
    fn shemo_with_original_json_array() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        shemo_tree(root);
        write(
            root,
            "shemo.json",
            r#"[{"id": "F01A01", "emotion": "sad"}, {"id": "M12S04", "emotion": "surprised"}]"#,
        );
        let source = load(root).unwrap();
        let labels: Vec<_> = summary(&source)
            .into_iter()
            .map(|(n, l, _)| (n, l))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("F01A01.wav".to_string(), Sadness),
                ("F01W02.wav".to_string(), Surprise),
                ("F02H01.wav".to_string(), Happiness),
                ("M12N03.wav".to_string(), Neutral),
                ("M12S04.wav".to_string(), Surprise),
            ]
        );
    }

    #[test]
    fn shemo_broken_json_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        shemo_tree(root);
        let json = write(root, "modified_shemo.json", "{ not json");
        let err = load(root).unwrap_err();
        assert!(matches!(&err, CorpusError::Json { path, .. } if *path == json));
        let msg = err.to_string();
        assert!(msg.contains("modified_shemo.json"), "{msg}");
        assert!(!msg.contains('\n'));

        write(
            root,
            "modified_shemo.json",
            r#"{"F01A01.wav": {"gender": "female"}}"#,
        );
        let err = load(root).unwrap_err();
        assert!(err.to_string().contains("\"emotion\""), "{err}");
    }

    #[test]
    fn esd() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "0011/Angry/0011_000351.wav",
            "0011/Happy/train/0011_000701.wav",
            "0011/Neutral/evaluation/0011_000001.wav",
            "0011/Sad/test/0011_001051.wav",
            "0011/Surprise/0011_001401.wav",
            "0012/Angry/train/0012_000352.wav",
        ] {
            touch(root, name);
        }
        touch(root, "0011/0011.txt");
        let source = load(root).unwrap();
        assert_eq!(source.kind, Kind::Esd);
        assert_eq!(
            summary(&source),
            vec![
                row("0011_000351.wav", Anger, "esd:0011"),
                row("0011_000701.wav", Happiness, "esd:0011"),
                row("0011_000001.wav", Neutral, "esd:0011"),
                row("0011_001051.wav", Sadness, "esd:0011"),
                row("0011_001401.wav", Surprise, "esd:0011"),
                row("0012_000352.wav", Anger, "esd:0012"),
            ]
        );
        assert!(source.left_out.is_empty());
        assert!(source.problems.is_empty());

        // An emotion folder given directly works too.
        let one = load(&root.join("0011/Happy")).unwrap();
        assert_eq!(
            summary(&one),
            vec![row("0011_000701.wav", Happiness, "esd:0011")]
        );
    }

    #[test]
    fn savee_speaker_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "AudioData/DC/a01.wav",
            "AudioData/DC/d01.wav",
            "AudioData/DC/f02.wav",
            "AudioData/JE/h03.wav",
            "AudioData/JK/n30.wav",
            "AudioData/KL/sa01.wav",
            "AudioData/KL/su15.wav",
            "AudioData/KL/s01.wav",
        ] {
            touch(root, name);
        }
        let source = load(root).unwrap();
        assert_eq!(source.kind, Kind::Savee);
        assert_eq!(
            summary(&source),
            vec![
                row("a01.wav", Anger, "savee:DC"),
                row("h03.wav", Happiness, "savee:JE"),
                row("n30.wav", Neutral, "savee:JK"),
                row("sa01.wav", Sadness, "savee:KL"),
                row("su15.wav", Surprise, "savee:KL"),
            ]
        );
        assert_eq!(source.left_out, counts(&[("disgust", 1), ("fear", 1)]));
        // There is no plain `s` prefix.
        assert_eq!(source.problems.len(), 1);
        assert!(source.problems[0].path.ends_with("s01.wav"));
    }

    #[test]
    fn savee_flat() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "ALL/DC_a01.wav",
            "ALL/JE_sa02.wav",
            "ALL/JK_su03.wav",
            "ALL/KL_n04.wav",
            "ALL/KL_h05.wav",
            "ALL/KL_d06.wav",
        ] {
            touch(root, name);
        }
        let source = load(root).unwrap();
        assert_eq!(source.kind, Kind::Savee);
        assert_eq!(
            summary(&source),
            vec![
                row("DC_a01.wav", Anger, "savee:DC"),
                row("JE_sa02.wav", Sadness, "savee:JE"),
                row("JK_su03.wav", Surprise, "savee:JK"),
                row("KL_h05.wav", Happiness, "savee:KL"),
                row("KL_n04.wav", Neutral, "savee:KL"),
            ]
        );
        assert_eq!(source.left_out, counts(&[("disgust", 1)]));
    }

    #[test]
    fn unrecognised_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "recordings/hello.wav");
        touch(root, "recordings/world.wav");
        touch(root, "list.csv");
        let err = load(root).unwrap_err();
        assert!(matches!(err, CorpusError::Unrecognised { .. }));
        let msg = err.to_string();
        for kind in Kind::CORPORA {
            assert!(msg.contains(kind.name()), "{msg} lacks {kind}");
        }
        assert!(msg.contains("list.csv"), "{msg}");
        assert!(msg.contains(&root.display().to_string()), "{msg}");
        assert!(!msg.contains('\n'));

        // No audio at all.
        let empty = tempfile::tempdir().unwrap();
        touch(empty.path(), "notes.txt");
        let err = load(empty.path()).unwrap_err();
        assert!(err.to_string().contains("no audio files"), "{err}");

        // A minority of corpus-named files does not make a corpus.
        let mixed = tempfile::tempdir().unwrap();
        touch(mixed.path(), "03a01Fa.wav");
        touch(mixed.path(), "a.wav");
        touch(mixed.path(), "b.wav");
        let err = load(mixed.path()).unwrap_err();
        assert!(err.to_string().contains("only 1 of its 3"), "{err}");
    }

    #[test]
    fn majority_decides_and_outliers_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "03a01Fa.wav");
        touch(root, "03a01Wa.wav");
        touch(root, "F01A01.wav");
        let source = load(root).unwrap();
        assert_eq!(source.kind, Kind::EmoDb);
        assert_eq!(source.items.len(), 2);
        assert_eq!(source.problems.len(), 1);
        assert!(source.problems[0].error.contains("EmoDB"));
    }

    #[test]
    fn empty_source_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "Actor_01/03-01-02-01-01-01-01.wav");
        touch(root, "Actor_01/03-01-02-01-01-02-01.wav");
        touch(root, "Actor_01/03-01-06-01-01-02-01.wav");
        let err = load(root).unwrap_err();
        assert!(matches!(
            err,
            CorpusError::Empty {
                kind: Kind::Ravdess,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(msg.contains("calm 2, fearful 1"), "{msg}");
        assert!(msg.contains("RAVDESS"), "{msg}");
    }

    #[test]
    fn missing_and_wrong_paths() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = load(&missing).unwrap_err();
        assert!(matches!(&err, CorpusError::Missing(p) if *p == missing));
        assert!(err.to_string().contains("nope"));
        let text = touch(dir.path(), "data.txt");
        assert!(matches!(load(&text), Err(CorpusError::NotASource(_))));
        assert!(matches!(load_all(&[]), Err(CorpusError::NoSources)));
    }

    /// Fuzzing the manifest reader: damaged manifests load or give an error, never a panic.
    #[test]
    fn fuzz_damaged_manifests_load_or_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let base = "path,label,speaker\na.wav,anger,s1\n\"b, c.wav\", sadness ,s2\n\
                    d.wav,neutral,\"s 3\"\ne.wav,fear,s1\n";
        let path = dir.path().join("corpus.csv");
        for damaged in crate::fuzz::mutants(base.as_bytes(), 3, crate::fuzz::cases(10_000)) {
            fs::write(&path, &damaged).unwrap();
            if let Ok(source) = load(&path) {
                assert!(source.items.len() <= damaged.len());
            }
        }
    }

    #[test]
    fn manifest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "audio/a.wav");
        touch(root, "audio/b, with comma.wav");
        touch(root, "audio/say \"hi\".wav");
        touch(root, "audio/d.wav");
        touch(root, "audio/ends in space .wav ");
        let elsewhere = tempfile::tempdir().unwrap();
        let absolute = touch(elsewhere.path(), "e.wav");
        let csv = format!(
            "\u{feff}id,Label,path,speaker,notes\r\n\
             1,anger,audio/a.wav,spk1,x\r\n\
             2,HAPPINESS,\"audio/b, with comma.wav\",spk2,\"a, b\"\r\n\
             3,sadness,\"audio/say \"\"hi\"\".wav\",spk1,\"multi\nline\"\r\n\
             4,fear,audio/d.wav,spk2,\r\n\
             5,Fear,audio/d.wav,spk2,\r\n\
             6,neutral,audio/missing.wav,spk3,\r\n\
             \r\n\
             7,surprise,{},\" \",\r\n\
             8,,audio/d.wav,spk2,\r\n\
             9,anger, \"audio/ends in space .wav \" ,spk1,\r\n",
            absolute.display()
        );
        let manifest = write(root, "train.csv", &csv);
        let source = load(&manifest).unwrap();
        assert_eq!(source.kind, Kind::Manifest);
        assert_eq!(source.corpus, "manifest:train");
        let mut expected = vec![
            Item {
                path: root.join("audio/a.wav"),
                label: Anger,
                speaker: "manifest:train:spk1".into(),
                corpus: "manifest:train".into(),
            },
            Item {
                path: root.join("audio/b, with comma.wav"),
                label: Happiness,
                speaker: "manifest:train:spk2".into(),
                corpus: "manifest:train".into(),
            },
            Item {
                path: root.join("audio/say \"hi\".wav"),
                label: Sadness,
                speaker: "manifest:train:spk1".into(),
                corpus: "manifest:train".into(),
            },
            Item {
                // Blanks inside quotes are part of the path.
                path: root.join("audio/ends in space .wav "),
                label: Anger,
                speaker: "manifest:train:spk1".into(),
                corpus: "manifest:train".into(),
            },
            Item {
                path: absolute.clone(),
                label: Surprise,
                // No speaker on that row: the file is its own speaker.
                speaker: format!("manifest:train:{}", absolute.display()),
                corpus: "manifest:train".into(),
            },
        ];
        expected.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(source.items, expected);
        assert_eq!(source.speakerless, 1);
        assert_eq!(source.left_out, counts(&[("fear", 2)]));
        assert_eq!(source.problems.len(), 2);
        let missing = source
            .problems
            .iter()
            .find(|p| p.path == root.join("audio/missing.wav"))
            .expect("missing file reported");
        // Line 8: the quoted line break in the third row takes a line.
        assert!(missing.error.contains("no such file"), "{}", missing.error);
        assert!(missing.error.contains("line 8"), "{}", missing.error);
        let no_label = source
            .problems
            .iter()
            .find(|p| p.path == manifest)
            .expect("empty label reported");
        assert!(no_label.error.contains("line 11"), "{}", no_label.error);
    }

    #[test]
    fn manifest_without_speaker_column() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "x/one.wav");
        touch(root, "x/two.wav");
        let manifest = write(
            root,
            "set.csv",
            "label,path\nneutral,x/one.wav\nsurprise,x/two.wav\ncalm,x/three.wav\n",
        );
        let source = load(&manifest).unwrap();
        assert_eq!(
            summary(&source),
            vec![
                row("one.wav", Neutral, "manifest:set:x/one.wav"),
                row("two.wav", Surprise, "manifest:set:x/two.wav"),
            ]
        );
        assert_eq!(source.speakerless, 2);
        // A left-out label is counted, not checked for existence.
        assert_eq!(source.left_out, counts(&[("calm", 1)]));
        assert!(source.problems.is_empty());
    }

    #[test]
    fn manifest_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let no_label = write(root, "a.csv", "path,speaker\nx.wav,1\n");
        let err = load(&no_label).unwrap_err();
        assert!(matches!(
            &err,
            CorpusError::MissingColumn { path, column: "label", .. } if *path == no_label
        ));
        let msg = err.to_string();
        assert!(msg.contains("a.csv") && msg.contains("\"label\""), "{msg}");

        let no_path = write(root, "b.csv", "file,label\nx.wav,anger\n");
        assert!(matches!(
            load(&no_path),
            Err(CorpusError::MissingColumn { column: "path", .. })
        ));

        let empty = write(root, "c.csv", "\n\n");
        assert!(matches!(load(&empty), Err(CorpusError::Manifest { .. })));

        let latin1 = root.join("f.csv");
        fs::write(&latin1, b"path,label\nok.wav,anger\ncaf\xe9.wav,anger\n").unwrap();
        let err = load(&latin1).unwrap_err().to_string();
        assert!(
            err.contains("f.csv") && err.contains("line 3: not UTF-8"),
            "{err}"
        );

        let unterminated = write(root, "d.csv", "path,label\n\"x.wav,anger\n");
        let err = load(&unterminated).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");

        // Header only: nothing to use.
        let header_only = write(root, "e.csv", "path,label\n");
        let err = load(&header_only).unwrap_err();
        assert!(matches!(
            err,
            CorpusError::Empty {
                kind: Kind::Manifest,
                ..
            }
        ));
        assert!(err.to_string().contains("lists no files"), "{err}");

        // Only missing files.
        let all_missing = write(root, "f.csv", "path,label\nx.wav,anger\n");
        let err = load(&all_missing).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
    }

    #[test]
    fn csv_parser() {
        let records = parse_csv("a,\"b,c\",\"d\"\"e\"\r\n\"x\ny\",,z\rlast").unwrap();
        assert_eq!(
            records,
            vec![
                (1, vec!["a".into(), "b,c".into(), "d\"e".into()]),
                (2, vec!["x\ny".into(), String::new(), "z".into()]),
                (4, vec!["last".into()]),
            ]
        );
        // A quote inside an unquoted field is text; an empty quoted field is empty.
        assert_eq!(
            parse_csv("5\" disk,\"\"\n").unwrap(),
            vec![(1, vec!["5\" disk".into(), String::new()])]
        );
        assert_eq!(parse_csv("").unwrap(), Vec::<(usize, Vec<String>)>::new());
        // Blanks around a field are dropped; inside quotes they are part of the value.
        assert_eq!(
            parse_csv(" a b , \"  c d \" ,\" e\"x \n").unwrap(),
            vec![(1, vec!["a b".into(), "  c d ".into(), " ex".into()])]
        );
        assert!(parse_csv("a\n\"b").unwrap_err().contains("line 2"));
    }

    #[test]
    fn combining_sources() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ravdess = root.join("ravdess");
        touch(&ravdess, "Actor_01/03-01-01-01-01-01-01.wav");
        touch(&ravdess, "Actor_01/03-01-02-01-01-01-01.wav");
        touch(&ravdess, "Actor_03/03-01-05-01-01-01-03.wav");
        let emodb = root.join("emodb");
        touch(&emodb, "wav/01a01Wa.wav");
        touch(&emodb, "wav/03a01Fa.wav");
        // A manifest that lists one EmoDB file again, with another label, plus one of its own.
        touch(root, "extra/z.wav");
        let manifest = write(
            root,
            "extra.csv",
            "path,label,speaker\nemodb/wav/03a01Fa.wav,sadness,01\nextra/z.wav,neutral,01\n",
        );
        let data = load_all(&[ravdess.clone(), emodb.clone(), manifest.clone()]).unwrap();
        let got: Vec<(PathBuf, Emotion, &str)> = data
            .items
            .iter()
            .map(|i| (i.path.clone(), i.label, i.speaker.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (emodb.join("wav/01a01Wa.wav"), Anger, "emodb:01"),
                (emodb.join("wav/03a01Fa.wav"), Happiness, "emodb:03"),
                (root.join("extra/z.wav"), Neutral, "manifest:extra:01"),
                (
                    ravdess.join("Actor_01/03-01-01-01-01-01-01.wav"),
                    Neutral,
                    "ravdess:01"
                ),
                (
                    ravdess.join("Actor_03/03-01-05-01-01-01-03.wav"),
                    Anger,
                    "ravdess:03"
                ),
            ]
        );
        // Speaker "01" of three corpora: three people.
        assert_eq!(data.speakers(), 5);
        assert_eq!(data.sources.len(), 3);
        assert_eq!(
            data.sources.iter().map(|s| s.kind).collect::<Vec<_>>(),
            vec![Kind::Ravdess, Kind::EmoDb, Kind::Manifest]
        );
        assert_eq!(data.sources[0].items, 2);
        assert_eq!(data.sources[0].speakers, 2);
        assert_eq!(data.sources[2].items, 1);
        assert_eq!(data.left_out(), counts(&[("calm", 1)]));
        let counts = data.counts();
        assert_eq!(counts[&Anger], 2);
        assert_eq!(counts[&Neutral], 2);
        assert_eq!(counts[&Happiness], 1);
        assert!(!counts.contains_key(&Sadness));
        let dup: Vec<&Skipped> = data.problems().collect();
        assert_eq!(dup.len(), 1);
        assert!(dup[0].error.contains("happiness"), "{}", dup[0].error);
        // The summary is what a model card records.
        let json = serde_json::to_value(&data.sources[1]).unwrap();
        assert_eq!(json["kind"], "emodb");
        assert_eq!(json["counts"]["anger"], 1);
    }

    #[test]
    fn real_corpora() {
        let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora");
        if !corpora.is_dir() {
            eprintln!("skipped: {} is absent", corpora.display());
            return;
        }
        let ravdess = load(&corpora.join("ravdess")).unwrap();
        assert_eq!(ravdess.kind, Kind::Ravdess);
        assert_eq!(ravdess.items.len(), 720);
        assert!(ravdess.problems.is_empty(), "{:?}", ravdess.problems);
        let summary = ravdess.summary();
        assert_eq!(summary.speakers, 20);
        let expected: BTreeMap<Emotion, usize> = [
            (Neutral, 80),
            (Happiness, 160),
            (Sadness, 160),
            (Anger, 160),
            (Surprise, 160),
        ]
        .into();
        assert_eq!(summary.counts, expected);

        let emodb = load(&corpora.join("emodb")).unwrap();
        assert_eq!(emodb.kind, Kind::EmoDb);
        assert_eq!(emodb.items.len(), 339);
        assert!(emodb.problems.is_empty(), "{:?}", emodb.problems);
        let summary = emodb.summary();
        assert_eq!(summary.speakers, 10);
        let expected: BTreeMap<Emotion, usize> =
            [(Anger, 127), (Happiness, 71), (Sadness, 62), (Neutral, 79)].into();
        assert_eq!(summary.counts, expected);

        let both = load_all(&[corpora.join("ravdess"), corpora.join("emodb")]).unwrap();
        assert_eq!(both.items.len(), 1059);
        assert_eq!(both.speakers(), 30);
    }
}
