//! A feature set's openSMILE configuration as a graph of components, cut into the parts that
//! serd's extractor runs, each in an openSMILE instance of its own.
//!
//! openSMILE runs a configuration's components one after another on one thread (it ignores
//! `nThreads`). Most of their work is independent, though: in ComParE 2016 the pitch and voice
//! quality chain and the spectral chain share only the input. A [`Split`] names the output levels
//! of a first part; a second part computes the rest. Each part declares only the components its
//! outputs need (the reader/writer levels of the configuration tell which), so the two run on two
//! cores and compute, together, exactly the functionals of the whole configuration: the same
//! components, configured by the same vendored files, on the same input. Components that both
//! parts need (framing, pitch in eGeMAPS) run in both.
//!
//! A part's configuration is the vendored top-level file with its plain includes inlined (relative
//! paths in them made absolute), the instance declarations the part does not need commented out,
//! and, in place of the stock sink include, one external sink per output level (serd's extractor
//! puts the levels back in the configuration's order).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::files::{fnv1a, write_whole, FNV_OFFSET};

/// The level the stock configurations concatenate their functionals into.
const FUNC_LEVEL: &str = "func";

/// How the stock configurations include their sinks: through the command-line option `sink`.
const SINK_INCLUDE: &str = "\\{\\cm[sink";

/// Where a feature set's graph is cut.
#[derive(Clone, Copy, Debug)]
pub struct Split {
    /// Functionals levels the first part computes; the second part computes the others.
    pub first: &'static [&'static str],
    /// A functionals component whose input levels are shared out: the first part reads its first
    /// input level, the second part the others, and both write its level (functionals are
    /// computed per input column, so its columns are the same, the first part's first).
    pub divided: Option<&'static str>,
}

/// One openSMILE instance's share of a feature set.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The configuration file to load.
    pub config: PathBuf,
    /// The functionals levels this part delivers, one external sink each ([`Part::sink`]).
    pub levels: Vec<String>,
    /// Whether the part delivers the voicing level, through the sink [`VOICING_SINK`].
    pub voicing: bool,
}

impl Part {
    /// Name of the external sink that delivers `self.levels[i]`.
    pub fn sink(i: usize) -> String {
        format!("serd_func{i}")
    }
}

/// Name of the external sink that delivers the voicing level.
pub const VOICING_SINK: &str = "serd_voicing";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read openSMILE configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write openSMILE configuration {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("openSMILE configuration {path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

/// A configuration file with its plain includes inlined, and its components' levels.
#[derive(Debug)]
pub struct Graph {
    path: PathBuf,
    lines: Vec<String>,
    /// Component → the levels it reads (every `*reader*.dmLevel`, in order).
    reads: HashMap<String, Vec<String>>,
    /// Level → the component writing it.
    writer: HashMap<String, String>,
}

impl Graph {
    /// Reads `top` and, recursively, the files it includes by a plain `\{path}` (relative to the
    /// including file). Includes through a command-line option (`\{\cm[...]}`) stay as they are.
    pub fn load(top: &Path) -> Result<Graph, Error> {
        let mut lines = Vec::new();
        inline(top, &mut lines, 0)?;
        let (mut instances, mut reads, mut writes) = (Vec::new(), HashMap::new(), Vec::new());
        let mut section = String::new();
        for line in &lines {
            if let Some(name) = instance_of(line) {
                instances.push(name.to_string());
            } else if let Some(name) = section_of(line) {
                section = name.to_string();
            } else if let Some((key, value)) = setting(line) {
                if key.ends_with(".dmLevel") && key.to_ascii_lowercase().contains("reader") {
                    reads
                        .entry(section.clone())
                        .or_insert_with(Vec::new)
                        .extend(levels(value));
                } else if key == "writer.dmLevel" {
                    writes.push((value.trim().to_string(), section.clone()));
                }
            }
        }
        // Sections of components that are not declared write nothing.
        let writer = writes
            .into_iter()
            .filter(|(_, component)| instances.contains(component))
            .collect();
        Ok(Graph {
            path: top.to_path_buf(),
            lines,
            reads,
            writer,
        })
    }

    /// The functionals levels, in the order the configuration concatenates them.
    pub fn functionals(&self) -> Result<Vec<String>, Error> {
        let concat = self
            .writer
            .get(FUNC_LEVEL)
            .ok_or_else(|| self.invalid("no func level"))?;
        Ok(self.reads.get(concat).cloned().unwrap_or_default())
    }

    /// The parts to run: the whole configuration, or the two halves of `split`.
    pub fn parts(&self, voicing: &str, split: Option<Split>) -> Result<Vec<Part>, Error> {
        let all = self.functionals()?;
        let Some(split) = split else {
            return Ok(vec![self.part(all, Some(voicing), None)?]);
        };
        for level in split.first {
            if !all.iter().any(|l| l == level) {
                return Err(self.invalid(&format!("{level} is not a functionals level")));
            }
        }
        let (first, mut second): (Vec<String>, Vec<String>) = all
            .into_iter()
            .partition(|l| split.first.contains(&l.as_str()));
        let (mut cut_first, mut cut_second) = (None, None);
        if let Some(component) = split.divided {
            let inputs = self.reads.get(component).filter(|r| r.len() > 1);
            let inputs = inputs.ok_or_else(|| {
                self.invalid(&format!("{component} does not read several levels"))
            })?;
            let level = self.output_of(component)?;
            if !first.contains(&level) {
                return Err(self.invalid(&format!("{level} is divided but not in the first part")));
            }
            // The second part delivers the divided level where the configuration has it.
            second = self
                .functionals()?
                .into_iter()
                .filter(|l| *l == level || second.contains(l))
                .collect();
            cut_first = Some((component, &inputs[..1]));
            cut_second = Some((component, &inputs[1..]));
        }
        Ok(vec![
            self.part(first, Some(voicing), cut_first)?,
            self.part(second, None, cut_second)?,
        ])
    }

    /// Writes (once: the file name is a hash of its content) the configuration of a part that
    /// delivers `levels` and perhaps `voicing`, `cut` replacing one component's input levels.
    fn part(
        &self,
        levels: Vec<String>,
        voicing: Option<&str>,
        cut: Option<(&str, &[String])>,
    ) -> Result<Part, Error> {
        let mut reads = self.reads.clone();
        if let Some((component, inputs)) = cut {
            reads.insert(component.to_string(), inputs.to_vec());
        }
        let outputs: Vec<&str> = levels.iter().map(String::as_str).chain(voicing).collect();
        let needed = self.needed(&reads, &outputs)?;
        let text = self.render(&needed, cut, &levels, voicing);
        let stem = self.path.file_stem().unwrap_or_default().to_string_lossy();
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let config = dir.join(format!(
            "serd-{stem}-{:016x}.conf",
            fnv1a(FNV_OFFSET, text.as_bytes())
        ));
        write_once(&config, &text)?;
        Ok(Part {
            config,
            levels,
            voicing: voicing.is_some(),
        })
    }

    /// The components that the levels `outputs` depend on. Levels no declared component writes
    /// (the input, `wave`) are the part's inputs.
    fn needed(
        &self,
        reads: &HashMap<String, Vec<String>>,
        outputs: &[&str],
    ) -> Result<BTreeSet<String>, Error> {
        let mut needed = BTreeSet::new();
        let mut todo: Vec<&str> = outputs.to_vec();
        while let Some(level) = todo.pop() {
            let Some(component) = self.writer.get(level) else {
                if outputs.contains(&level) {
                    return Err(self.invalid(&format!("no component writes {level}")));
                }
                continue;
            };
            if needed.insert(component.clone()) {
                todo.extend(
                    reads
                        .get(component)
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                );
            }
        }
        Ok(needed)
    }

    fn render(
        &self,
        needed: &BTreeSet<String>,
        cut: Option<(&str, &[String])>,
        levels: &[String],
        voicing: Option<&str>,
    ) -> String {
        let mut sinks: Vec<(String, &str)> = levels
            .iter()
            .enumerate()
            .map(|(i, level)| (Part::sink(i), level.as_str()))
            .collect();
        sinks.extend(voicing.map(|level| (VOICING_SINK.to_string(), level)));
        let mut sink_text = String::from("[componentInstances:cComponentManager]\n");
        for (name, _) in &sinks {
            let _ = writeln!(sink_text, "instance[{name}].type = cExternalSink");
        }
        for (name, level) in &sinks {
            let _ = writeln!(
                sink_text,
                "[{name}:cExternalSink]\nreader.dmLevel = {level}"
            );
        }

        let mut text = String::from(
            ";;; serd: one part of this feature set's components (src/features/graph.rs).\n",
        );
        let mut section = "";
        for line in &self.lines {
            if let Some(name) = section_of(line) {
                section = name;
            }
            let dropped = instance_of(line)
                .is_some_and(|name| name != "dataMemory" && !needed.contains(name));
            let cut_inputs = cut
                .filter(|(component, _)| section == *component)
                .filter(|_| setting(line).is_some_and(|(key, _)| key == "reader.dmLevel"));
            if code(line).is_some_and(|l| l.starts_with(SINK_INCLUDE)) {
                // The stock configurations include their sinks through the option `sink`: the
                // part's own sinks go there.
                text.push_str(&std::mem::take(&mut sink_text));
            } else if dropped {
                let _ = writeln!(text, ";;; serd: not in this part: {line}");
            } else if let Some((_, inputs)) = cut_inputs {
                let _ = writeln!(text, "reader.dmLevel = {}", inputs.join(";"));
            } else {
                let _ = writeln!(text, "{line}");
            }
        }
        text.push_str(&sink_text);
        text
    }

    fn output_of(&self, component: &str) -> Result<String, Error> {
        self.writer
            .iter()
            .find(|(_, c)| *c == component)
            .map(|(level, _)| level.clone())
            .ok_or_else(|| self.invalid(&format!("{component} writes no level")))
    }

    fn invalid(&self, problem: &str) -> Error {
        Error::Invalid {
            path: self.path.clone(),
            problem: problem.to_string(),
        }
    }
}

/// Appends the lines of `path` to `out`, with plain includes replaced by their files' lines.
fn inline(path: &Path, out: &mut Vec<String>, depth: usize) -> Result<(), Error> {
    if depth > 16 {
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            problem: "includes nest more than 16 deep".into(),
        });
    }
    let text = fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for line in text.lines() {
        let include = line
            .trim()
            .strip_prefix("\\{")
            .and_then(|s| s.strip_suffix('}'))
            .filter(|s| !s.starts_with('\\'));
        match include {
            Some(file) => inline(&dir.join(file.trim()), out, depth + 1)?,
            None => out.push(absolute_defaults(line, dir)),
        }
    }
    Ok(())
}

/// `line` with the relative file paths of its option defaults (`\cm[name{../x.inc}:...]`, which
/// openSMILE resolves from the file they are written in) made absolute from `dir`: an inlined
/// line no longer sits in that file.
fn absolute_defaults(line: &str, dir: &Path) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("\\cm[") {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        let name_end = tail.find(['{', ':', ']']).unwrap_or(tail.len());
        let default = tail[name_end..]
            .strip_prefix('{')
            .and_then(|d| d.find('}').map(|end| &d[..end]));
        match default {
            Some(default) if default.contains('/') && Path::new(default).is_relative() => {
                let _ = write!(
                    out,
                    "{}{{{}}}",
                    &tail[..name_end],
                    dir.join(default).display()
                );
                rest = &tail[name_end + default.len() + 2..];
            }
            _ => {
                out.push_str(&tail[..name_end]);
                rest = &tail[name_end..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text of a line that is not a comment.
fn code(line: &str) -> Option<&str> {
    let line = line.trim();
    let comment = line.is_empty() || line.starts_with(';') || line.starts_with("//");
    (!comment).then_some(line)
}

/// `name` of `[name:type]`.
fn section_of(line: &str) -> Option<&str> {
    let inner = code(line)?.strip_prefix('[')?.split(']').next()?;
    inner.split_once(':').map(|(name, _)| name.trim())
}

/// `name` of `instance[name].type = ...`.
fn instance_of(line: &str) -> Option<&str> {
    let (key, _) = setting(line)?;
    key.strip_prefix("instance[")?.strip_suffix("].type")
}

/// `(key, value)` of `key = value`.
fn setting(line: &str) -> Option<(&str, &str)> {
    let (key, value) = code(line)?.split_once('=')?;
    Some((key.trim(), value.trim()))
}

/// The levels of a `dmLevel` value (`a;b;c`, perhaps with a trailing `;`).
fn levels(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(';')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
}

/// Writes `text` to `path` unless it is there already.
fn write_once(path: &Path, text: &str) -> Result<(), Error> {
    if fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    write_whole(path, text.as_bytes()).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy configuration: `wave` → a → {b, c}; functionals f1 (reads b), f2 (reads b and c).
    /// `zombie` has a section but is not declared, so it writes nothing.
    fn toy(dir: &Path) -> Graph {
        fs::write(
            dir.join("core.inc"),
            "[componentInstances:cComponentManager]\n\
             instance[a].type = cA\ninstance[b].type = cB\ninstance[c].type = cC\n\
             instance[f1].type = cF\ninstance[f2].type = cF\n\
             [a:cA]\nreader.dmLevel = wave\nwriter.dmLevel = la\n\
             [b:cB]\nreader.dmLevel = la\nwriter.dmLevel = lb\n\
             [c:cC]\nreader.dmLevel = la\nwriter.dmLevel = lc\n\
             [zombie:cB]\nreader.dmLevel = wave\nwriter.dmLevel = lb\n\
             [f1:cF]\nreader.dmLevel = lb\nwriter.dmLevel = l1\n\
             [f2:cF]\nreader.dmLevel = lb;lc\nwriter.dmLevel = l2\n",
        )
        .unwrap();
        fs::write(
            dir.join("top.conf"),
            "[componentInstances:cComponentManager]\ninstance[dataMemory].type=cDataMemory\n\
             \\{\\cm[source{?}:source]}\n\\{core.inc}\n\
             [componentInstances:cComponentManager]\ninstance[cat].type=cVectorConcat\n\
             [cat:cVectorConcat]\nreader.dmLevel = l1;l2\nwriter.dmLevel = func\n\
             \\{\\cm[sink{?}:sink]}\n",
        )
        .unwrap();
        Graph::load(&dir.join("top.conf")).unwrap()
    }

    /// The instances `part`'s configuration declares, as one space-separated string.
    fn declared(part: &Part) -> String {
        let text = fs::read_to_string(&part.config).unwrap();
        assert!(
            !text.contains(SINK_INCLUDE),
            "the sink include is replaced:\n{text}"
        );
        let names: Vec<&str> = text.lines().filter_map(instance_of).collect();
        names.join(" ")
    }

    #[test]
    fn parts_declare_only_what_their_outputs_need() {
        let dir = tempfile::tempdir().unwrap();
        let graph = toy(dir.path());
        assert_eq!(graph.functionals().unwrap(), ["l1", "l2"]);

        let whole = graph.parts("lb", None).unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].levels, ["l1", "l2"]);
        // The concatenation is not needed: serd reads each level through a sink of its own.
        assert_eq!(
            declared(&whole[0]),
            "dataMemory a b c f1 f2 serd_func0 serd_func1 serd_voicing"
        );

        let split = Split {
            first: &["l1"],
            divided: None,
        };
        let parts = graph.parts("lb", Some(split)).unwrap();
        assert_eq!(parts[0].levels, ["l1"]);
        assert!(parts[0].voicing);
        assert_eq!(
            declared(&parts[0]),
            "dataMemory a b f1 serd_func0 serd_voicing"
        );
        assert_eq!(parts[1].levels, ["l2"]);
        assert!(!parts[1].voicing);
        assert_eq!(declared(&parts[1]), "dataMemory a b c f2 serd_func0");
    }

    #[test]
    fn a_divided_component_reads_part_of_its_inputs_in_each_part() {
        let dir = tempfile::tempdir().unwrap();
        let graph = toy(dir.path());
        let split = Split {
            first: &["l2"],
            divided: Some("f2"),
        };
        let parts = graph.parts("lb", Some(split)).unwrap();
        assert_eq!(parts[0].levels, ["l2"]);
        assert_eq!(
            declared(&parts[0]),
            "dataMemory a b f2 serd_func0 serd_voicing"
        );
        assert_eq!(parts[1].levels, ["l1", "l2"]);
        assert_eq!(
            declared(&parts[1]),
            "dataMemory a b c f1 f2 serd_func0 serd_func1"
        );
        let second = fs::read_to_string(&parts[1].config).unwrap();
        assert!(
            second.contains("[f2:cF]\nreader.dmLevel = lc\n"),
            "{second}"
        );
        // The same part is written once: its file name is its content's hash.
        let again = graph.parts("lb", Some(split)).unwrap();
        assert_eq!(again, parts);
    }

    #[test]
    fn relative_option_defaults_become_absolute() {
        let dir = Path::new("/cfg/gemaps/v01b");
        assert_eq!(
            absolute_defaults(
                "\\{\\cm[bufferModeConf{../../shared/B.inc}:path to it]}",
                dir
            ),
            "\\{\\cm[bufferModeConf{/cfg/gemaps/v01b/../../shared/B.inc}:path to it]}"
        );
        for unchanged in [
            "\\{\\cm[source{?}:include external source]}",
            "\\{\\cm[bufferModeRbConf]}",
            "blocksize = \\cm[blockSize{1}:block size]",
            "\\{\\cm[x{/abs/x.inc}]}",
            "reader.dmLevel = a;b",
        ] {
            assert_eq!(absolute_defaults(unchanged, dir), unchanged);
        }
    }

    #[test]
    fn bad_splits_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let graph = toy(dir.path());
        let unknown = Split {
            first: &["lx"],
            divided: None,
        };
        assert!(graph.parts("lb", Some(unknown)).is_err());
        let single_input = Split {
            first: &["l1"],
            divided: Some("f1"),
        };
        assert!(graph.parts("lb", Some(single_input)).is_err());
        assert!(graph.parts("nowhere", None).is_err());
    }
}
