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

pub(super) fn scan(root: &Path) -> Result<Scan, CorpusError> {
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
