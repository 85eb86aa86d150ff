//! CSV manifests: `path,label[,speaker]` rows naming files anywhere, with their own labels.
//!
//! The reader is serd's own ([`parse_csv`]), not the `csv` crate: measured with csv 1.4, that
//! crate reads a quoted path with a blank before its opening quote (`9,anger, "a b .wav" ,x`) as
//! text with the quotes in it, and an unterminated quote silently swallows the rest of the
//! manifest into one field, where serd reports "unterminated quoted field starting on line N".

use super::*;

pub(super) fn load_manifest(path: &Path) -> Result<Source, CorpusError> {
    let records = read_records(path)?;
    let mut records = records
        .into_iter()
        .filter(|(_, fields)| fields.iter().any(|f| !f.trim().is_empty()));
    let Some((_, header)) = records.next() else {
        return Err(CorpusError::Manifest {
            path: path.to_path_buf(),
            detail: "empty; expected a header with path,label[,speaker]".to_string(),
        });
    };
    let Columns {
        path: path_col,
        label: label_col,
        speaker: speaker_col,
    } = columns(path, &header)?;

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
    // A manifest's labels are its author's: one outside the classes is likely a slip ("angry"),
    // so it is said, with the classes. (When nothing is left, the error says it instead.)
    if !source.left_out.is_empty() && !source.items.is_empty() {
        log::warn!("{}: {}", path.display(), left_out_detail(&source.left_out));
    }
    Ok(source)
}

/// Where a manifest's rows hold the path, the label and the speaker (optional).
struct Columns {
    path: usize,
    label: usize,
    speaker: Option<usize>,
}

/// The columns `header` names (in any case, blanks around them ignored); the manifest at `path`
/// needs a path and a label column.
fn columns(path: &Path, header: &[String]) -> Result<Columns, CorpusError> {
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
    Ok(Columns {
        path: require("path")?,
        label: require("label")?,
        speaker: column("speaker"),
    })
}

/// The manifest's CSV records, each with the line it starts on.
fn read_records(path: &Path) -> Result<Vec<(usize, Vec<String>)>, CorpusError> {
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
    parse_csv(&text).map_err(|detail| CorpusError::Manifest {
        path: path.to_path_buf(),
        detail,
    })
}

/// Splits CSV text (RFC 4180) into records, each with the line it starts on (1-based).
///
/// Fields are separated by commas; a field in double quotes may hold commas, line breaks and
/// doubled quotes (`""` for `"`). Lines end in LF, CRLF or CR. A byte-order mark is skipped.
/// Leniencies: a quote inside an unquoted field, or text after a closing quote, is kept as
/// text. An unterminated quoted field is an error.
pub(super) fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
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
pub(super) struct Field {
    pub(super) text: String,
    /// For a quoted field, where its closing quote was in `text`.
    pub(super) quoted: Option<usize>,
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
