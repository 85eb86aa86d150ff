//! The openSMILE files embedded in the serd binary, unpacked once per version into a cache folder.
//!
//! openSMILE reads its configuration from files and is loaded with dlopen, so both must exist on
//! disk. Embedding them makes every way of running serd the same (`cargo run`, `cargo test`, a
//! binary installed with `cargo install --path .` and moved anywhere): the first run writes them
//! to `$SERD_CACHE_DIR`, else `$XDG_CACHE_HOME/serd`, else `~/.cache/serd`, else the temporary
//! folder, under a name that is a hash of their content, so a newer serd never reuses stale files.
//! Unpacking goes to a private folder first and is renamed into place ([`crate::files::Staged`]),
//! so concurrent processes (parallel tests) never see half-written files, and a run killed while
//! unpacking leaves a folder the next run removes.

use std::path::PathBuf;

use super::Error;

use opensmile_sys::files::{CONFIG_FILES, LIBRARY};

include!(concat!(env!("OUT_DIR"), "/serd_config.rs"));

/// Environment variable naming a SMILEapi library to load instead of the embedded one.
pub const LIBRARY_ENV: &str = "SERD_OPENSMILE_LIB";

/// Where the unpacked files are.
pub struct Files {
    pub config_dir: PathBuf,
    library: Option<PathBuf>,
}

impl Files {
    /// The library to load: the user's override if set (and then only that), else the embedded copy.
    pub fn library_candidates(&self) -> Vec<PathBuf> {
        match std::env::var_os(LIBRARY_ENV).filter(|v| !v.is_empty()) {
            Some(custom) => vec![PathBuf::from(custom)],
            None => self.library.clone().into_iter().collect(),
        }
    }
}

/// Unpacks the bundle if it is not there yet, and says where it is.
pub fn unpack() -> Result<Files, Error> {
    let dir = crate::dirs::cache_root().join(format!("opensmile-{BUNDLE_ID}"));
    let files = CONFIG_FILES
        .iter()
        .chain(SERD_CONFIG_FILES)
        .copied()
        .chain(LIBRARY);
    crate::files::unpack_once(&dir, files).map_err(|source| Error::Unpack {
        path: dir.clone(),
        source,
    })?;
    Ok(Files {
        config_dir: dir.join("config"),
        library: LIBRARY.map(|(name, _)| dir.join(name)),
    })
}
