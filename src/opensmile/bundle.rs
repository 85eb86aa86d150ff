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

use std::fs;
use std::path::{Path, PathBuf};

use super::Error;

include!(concat!(env!("OUT_DIR"), "/bundle.rs"));

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
    if !dir.join(".complete").is_file() {
        write_bundle(&dir).map_err(|source| Error::Unpack {
            path: dir.clone(),
            source,
        })?;
    }
    Ok(Files {
        config_dir: dir.join("config"),
        library: LIBRARY.map(|(name, _)| dir.join(name)),
    })
}

fn write_bundle(dir: &Path) -> std::io::Result<()> {
    // Staged beside `dir`; a staging folder left by a killed run is removed here.
    let staged = crate::files::Staged::new(dir)?;
    let files = CONFIG_FILES.iter().copied().chain(LIBRARY);
    for (name, bytes) in files {
        let path = staged.path().join(name);
        fs::create_dir_all(path.parent().unwrap_or(staged.path()))?;
        fs::write(&path, bytes)?;
    }
    fs::write(staged.path().join(".complete"), BUNDLE_ID)?;
    // Another process may have unpacked the same bundle first: theirs is identical.
    staged.commit_if_absent()
}
