//! serd's logger: one line per message on stderr (`serd: warning: ...`); stdout carries results only.
//!
//! Nothing written to stderr can fail the program: a full disk, a closed pipe or `2>/dev/full`
//! lose the messages, never the results (Rust's `eprintln!` would panic there).

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // Dependencies (symphonia, wgpu, ...) log their own view of problems serd reports itself:
        // their messages show from -vv on.
        let ours = metadata.target().starts_with("serd") || metadata.target() == "opensmile";
        let level = if ours {
            metadata.level()
        } else {
            metadata.level().max(Level::Debug)
        };
        level <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        let source = if record.target() == "opensmile" {
            " (openSMILE)"
        } else {
            ""
        };
        let message = record.args().to_string();
        let message = escape_line_breaks(&message);
        write_stderr(&format!("serd: {level}{source}: {message}\n"));
    }

    fn flush(&self) {}
}

/// Installs the logger; `verbosity` 0 shows warnings and errors, 1 adds info, 2 debug, 3 trace;
/// `quiet` shows errors only.
pub fn init(verbosity: u8, quiet: bool) {
    let level = match (quiet, verbosity) {
        (true, _) => LevelFilter::Error,
        (false, 0) => LevelFilter::Warn,
        (false, 1) => LevelFilter::Info,
        (false, 2) => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    // A second init (tests) keeps the first logger.
    let _ = log::set_logger(&Stderr);
    log::set_max_level(level);
}

/// Writes `text` to stderr as it is, in one call, ignoring any failure.
pub fn write_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A report for the person at the terminal (a table, a summary), on stderr unless `--quiet`.
pub fn report(text: &str) {
    if log::max_level() >= LevelFilter::Warn {
        write_stderr(&format!("{text}\n"));
    }
}

/// A progress line, for where no progress bar can be drawn (stderr is not a terminal): shown like
/// a bar would be, unless `--quiet`.
pub fn progress(text: &str) {
    if log::max_level() >= LevelFilter::Warn {
        write_stderr(&format!("serd: {}\n", escape_line_breaks(text)));
    }
}

/// A message is one line: line breaks inside it (a file name can hold one) are written as `\n`
/// and `\r`, so that a reader of the log never sees one message as two.
fn escape_line_breaks(message: &str) -> std::borrow::Cow<'_, str> {
    if message.contains(['\n', '\r']) {
        message.replace('\n', "\\n").replace('\r', "\\r").into()
    } else {
        message.into()
    }
}

/// `n` and a noun, singular only when `n` is 1: "1 file", "3 files", "0 copies".
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_are_escaped() {
        assert_eq!(escape_line_breaks("a\nb\r.wav: bad"), "a\\nb\\r.wav: bad");
        assert_eq!(escape_line_breaks("plain"), "plain");
    }

    #[test]
    fn counts_are_singular_only_for_one() {
        assert_eq!(count(1, "file", "files"), "1 file");
        assert_eq!(count(0, "file", "files"), "0 files");
        assert_eq!(count(2, "copy", "copies"), "2 copies");
    }
}
