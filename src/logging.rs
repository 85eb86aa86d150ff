//! serd's logger: one line per message on stderr (`serd: warning: ...`); stdout carries results only.

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
        eprintln!("serd: {level}{source}: {}", record.args());
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
