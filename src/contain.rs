//! Panics of third-party code on hostile input, turned into errors.
//!
//! symphonia panics on some malformed headers (a WAV or AIFF declaring a sample rate of 0 fails an
//! assertion in its time base) instead of returning an error. [`contain`] runs such a call,
//! catches the panic and returns its message, so the file is reported and skipped like any other
//! bad file. While a contained call runs, [`is_contained`] tells serd's panic hook (in `main.rs`)
//! not to report an internal error for a panic that is handled.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is inside [`contain`].
pub fn is_contained() -> bool {
    CONTAINED.with(Cell::get)
}

/// Runs `f`; a panic inside it becomes `Err(message)`.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let outer = CONTAINED.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(outer));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_flag_is_restored() {
        assert!(!is_contained());
        assert_eq!(contain(|| 7), Ok(7));
        let seen = contain(|| -> u32 {
            assert!(is_contained());
            panic!("bad header {}", 0)
        });
        assert_eq!(seen, Err("bad header 0".into()));
        assert!(!is_contained());
    }
}
