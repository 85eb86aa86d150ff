//! ShEMO's relabelling: the corrected labels its distributors publish as JSON, applied over
//! the labels in the file names.

use super::*;

/// The relabelling JSON in a ShEMO folder: `modified_shemo.json` first, else any `*.json`
/// whose name contains "shemo".
pub(super) fn find_shemo_json(root: &Path) -> Result<Option<PathBuf>, CorpusError> {
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
pub(super) struct Relabel {
    pub(super) path: PathBuf,
    /// `Err(word)` for an emotion word that is not understood.
    pub(super) labels: HashMap<String, Result<Label, String>>,
}

impl Relabel {
    /// Reads the `modified_shemo.json` format (an object keyed by file name, `"F01A01.wav"` or
    /// `"F01A01"`, whose values hold at least `"emotion"`), or the original ShEMO `shemo.json`
    /// (an array of objects with `"id"` and `"emotion"`).
    pub(super) fn read(path: &Path) -> Result<Relabel, CorpusError> {
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

    pub(super) fn lookup(&self, file: &Path) -> Option<Result<Label, String>> {
        let stem = file.file_stem()?.to_str()?.to_ascii_uppercase();
        self.labels.get(&stem).cloned()
    }
}

/// An emotion as relabelling JSON writes it: a word or a ShEMO letter.
pub(super) fn shemo_word(word: &str) -> Option<Label> {
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
