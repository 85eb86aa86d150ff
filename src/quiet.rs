//! Keeping native libraries' chatter off the terminal.
//!
//! Libraries serd loads through cpal and wgpu (ALSA and its plugins, JACK, Mesa's Vulkan
//! drivers) print diagnostics straight to the process's stderr, bypassing serd's logger: probing
//! for microphones on a machine without a sound card prints a dozen "ALSA lib ... cannot find
//! card '0'" lines. serd reports the outcome of those calls itself, in one line, so
//! [`quietly`] points stderr at /dev/null while they run. With `-vv` (debug) nothing is hidden.
//! serd's own messages written meanwhile by other threads would be hidden too. The calls wrapped
//! are the short probes made while the chain is not running yet, and the attempts to reopen a
//! lost microphone: no audio flows then, but a message another stage writes during an attempt
//! (finishing the windows it already had) is lost. That is the price of not printing ALSA's
//! chatter on every retry; `-vv` shows both.

#[cfg(unix)]
use std::fs::File;
#[cfg(unix)]
use std::os::fd::{AsFd, OwnedFd};
#[cfg(unix)]
use std::sync::Mutex;

/// The real stderr while redirected, and how many `quietly` calls are running.
#[cfg(unix)]
static SAVED: Mutex<(Option<OwnedFd>, usize)> = Mutex::new((None, 0));

/// Runs `f` with stderr redirected to /dev/null (unless debug logging is on).
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    if log::max_level() >= log::LevelFilter::Debug {
        return f();
    }
    let redirected = redirect();
    let result = f();
    if redirected {
        restore();
    }
    result
}

/// Points stderr at /dev/null (the first of nested calls); whether it did.
#[cfg(unix)]
fn redirect() -> bool {
    let mut saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
    if saved.1 == 0 {
        let Ok(null) = File::options().write(true).open("/dev/null") else {
            return false;
        };
        let Ok(original) = std::io::stderr().as_fd().try_clone_to_owned() else {
            return false;
        };
        if rustix::stdio::dup2_stderr(&null).is_err() {
            return false;
        }
        saved.0 = Some(original);
    }
    saved.1 += 1;
    true
}

#[cfg(unix)]
fn restore() {
    let mut saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
    saved.1 -= 1;
    if saved.1 == 0 {
        if let Some(original) = saved.0.take() {
            let _ = rustix::stdio::dup2_stderr(&original);
        }
    }
}

// Elsewhere (Windows) native libraries' chatter is left as it is.
#[cfg(not(unix))]
fn redirect() -> bool {
    false
}

#[cfg(not(unix))]
fn restore() {}
