//! Where serd keeps files between runs.

use std::path::PathBuf;

/// serd's cache folder: `$SERD_CACHE_DIR`, else `$XDG_CACHE_HOME/serd`, else `~/.cache/serd`,
/// else `serd` in the temporary folder. Holds the unpacked openSMILE bundle and the feature cache.
pub fn cache_root() -> PathBuf {
    let env_dir = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env_dir("SERD_CACHE_DIR")
        .or_else(|| env_dir("XDG_CACHE_HOME").map(|d| d.join("serd")))
        .or_else(|| env_dir("HOME").map(|d| d.join(".cache").join("serd")))
        .unwrap_or_else(|| std::env::temp_dir().join("serd"))
}
