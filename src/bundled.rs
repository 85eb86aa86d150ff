//! The bundled model (`models/default`), embedded in the binary by `build.rs`: an installed or
//! moved `serd` needs no source tree. The first use writes it to the cache folder (as the
//! openSMILE files are, [`crate::files::unpack_once`]), under a name that is a hash of its
//! content, where [`crate::model_dir::ModelDir::load`] reads it like any model directory.

use std::io;
use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/model_bundle.rs"));

/// What `serd --version` says of the bundled model: its id (the hash), feature set, window and
/// ensemble size.
pub const DESCRIPTION: &str = env!("SERD_MODEL");

/// The bundled model's directory, unpacked if it is not there yet.
pub fn model_dir() -> io::Result<PathBuf> {
    let dir = crate::dirs::cache_root().join(format!("model-{MODEL_ID}"));
    crate::files::unpack_once(&dir, MODEL_FILES.iter().copied())?;
    Ok(dir)
}
