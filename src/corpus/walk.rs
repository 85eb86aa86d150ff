//! Corpus folders: finding the audio files under a folder (symbolic-link loops and unreadable
//! folders reported, not followed), recognising which corpus they are, and turning them into items.

use super::*;

/// File extensions taken for audio when scanning a corpus folder (compared case-insensitively).
pub(super) const AUDIO_EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "aif", "aiff"];

/// How deep a corpus folder is searched; also what stops a loop of symbolic links.
pub(super) const MAX_DEPTH: usize = 16;

/// The audio files under a folder, and what could not be searched.
pub(super) struct Scan {
    pub(super) audio: Vec<PathBuf>,
    /// `.csv` files directly in the folder, for a hint when nothing is recognised.
    pub(super) manifests: Vec<PathBuf>,
    pub(super) problems: Vec<Skipped>,
}

/// Walks the folder with `walkdir`, following symbolic links. Each folder is searched once, by
/// its canonical path: a link back up the tree (walkdir reports it as a loop) or two links to one
/// folder do not repeat its files. Hidden entries (including the `._NAME.wav` resource forks macOS
/// leaves in archives) are skipped. An unreadable root is an error; an unreadable folder below it,
/// a broken link to an audio file, and a folder nested deeper than [`MAX_DEPTH`] are problems.
pub(super) fn scan(root: &Path) -> Result<Scan, CorpusError> {
    let mut found = Scan {
        audio: Vec::new(),
        manifests: Vec::new(),
        problems: Vec::new(),
    };
    let mut visited = std::collections::HashSet::new();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(true)
        .max_depth(MAX_DEPTH)
        .into_iter()
        .filter_entry(|e| {
            if e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.') {
                return false;
            }
            // A folder reached again through another link is not searched again.
            !e.file_type().is_dir()
                || fs::canonicalize(e.path()).map_or(true, |c| visited.insert(c))
        });
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.loop_ancestor().is_some() => continue,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                let io = e.io_error().map_or_else(
                    || io::Error::other(e.to_string()),
                    |io| io::Error::new(io.kind(), io.to_string()),
                );
                if e.depth() == 0 {
                    return Err(CorpusError::Read { path, source: io });
                }
                if has_extension(&path, &AUDIO_EXTENSIONS) {
                    found.problems.push(Skipped {
                        error: describe_io(&io),
                        path,
                    });
                } else if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                    found.problems.push(Skipped {
                        path,
                        error: format!("cannot read folder: {io}"),
                    });
                }
                continue;
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir() {
            if entry.depth() == MAX_DEPTH {
                found.problems.push(Skipped {
                    path: path.to_path_buf(),
                    error: format!("folder nested more than {MAX_DEPTH} deep; not searched"),
                });
            }
        } else if has_extension(path, &AUDIO_EXTENSIONS) {
            found.audio.push(path.to_path_buf());
        } else if entry.depth() == 1 && has_extension(path, &["csv"]) {
            found.manifests.push(path.to_path_buf());
        }
    }
    // walkdir lists folders in the file system's order.
    found.audio.sort();
    found.manifests.sort();
    found.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// The corpus most of the audio files are named like; more than half must be.
pub(super) fn detect(root: &Path, scan: &Scan) -> Result<Kind, CorpusError> {
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

pub(super) fn load_corpus(root: &Path) -> Result<Source, CorpusError> {
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
