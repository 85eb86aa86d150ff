//! A cache of extracted feature windows, so that repeated training runs do not re-extract.
//!
//! An entry's key hashes the file's bytes together with everything that shapes its features:
//! feature set, window, hop, serd's version and the openSMILE bundle. A changed file, feature set,
//! window/hop or serd version therefore never returns stale data: it simply misses. Entries are
//! written to a temporary file and renamed into place, so an interrupted run leaves only complete
//! entries, and every file extracted before an interruption is kept.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::extract::{model_windows, FileError};
use crate::features::{FeatureSet, Window, Windowing};

const MAGIC: &[u8; 8] = b"SERDFC01";

/// A folder of cached feature windows.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// `features` in serd's cache folder ([`crate::dirs::cache_root`]).
    pub fn default_dir() -> PathBuf {
        crate::dirs::cache_root().join("features")
    }

    /// The windows a model judges `path` by ([`model_windows`]), from the cache when present,
    /// else extracted and stored. The boolean says whether it was a cache hit.
    pub fn windows(
        &self,
        path: &Path,
        set: FeatureSet,
        windowing: Windowing,
    ) -> Result<(Vec<Window>, bool), FileError> {
        let bytes = read_file(path)?;
        let key = key(&bytes, set, windowing);
        let entry = self.dir.join(format!("{key:016x}.bin"));
        if let Some(windows) = fs::read(&entry)
            .ok()
            .and_then(|data| decode(&data, key, set.dimension()))
        {
            return Ok((windows, true));
        }
        let windows = model_windows(path, set, windowing)?.windows;
        if let Err(e) = self.store(&entry, key, &windows) {
            log::warn!("cannot write the feature cache {}: {e}", entry.display());
        }
        Ok((windows, false))
    }

    fn store(&self, entry: &Path, key: u64, windows: &[Window]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
        fs::write(&tmp, encode(key, windows))?;
        fs::rename(&tmp, entry)
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    use crate::audio::decode::DecodeError;
    let meta = fs::metadata(path).map_err(DecodeError::Io)?;
    if meta.is_dir() {
        return Err(DecodeError::Directory.into());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(DecodeError::Io)?;
    Ok(bytes)
}

/// Bumped whenever what serd stores for a file changes between releases of the same version
/// (2: a file shorter than one window gets one whole-file window, not none).
const REVISION: u32 = 2;

/// FNV-1a over the file and the extraction parameters.
fn key(bytes: &[u8], set: FeatureSet, windowing: Windowing) -> u64 {
    let params = format!(
        "{}|{:?}|{}|{}|{REVISION}",
        set.name(),
        windowing,
        env!("CARGO_PKG_VERSION"),
        crate::opensmile::BUNDLE_ID
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in params.as_bytes().iter().chain(bytes) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn encode(key: u64, windows: &[Window]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(&(windows.len() as u64).to_le_bytes());
    for w in windows {
        out.extend_from_slice(&w.t_start.to_le_bytes());
        out.extend_from_slice(&w.t_end.to_le_bytes());
        out.extend_from_slice(&w.voiced.to_le_bytes());
        out.extend_from_slice(&(w.features.len() as u64).to_le_bytes());
        for v in &w.features {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Reads an entry back; `None` for anything unexpected (treated as a miss).
fn decode(data: &[u8], key: u64, dimension: usize) -> Option<Vec<Window>> {
    let mut r = Reader(data);
    if r.take(8)? != MAGIC || r.u64()? != key {
        return None;
    }
    let n = r.u64()? as usize;
    let mut windows = Vec::with_capacity(n.min(100_000));
    for _ in 0..n {
        let t_start = f64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let t_end = f64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let voiced = f32::from_le_bytes(r.take(4)?.try_into().ok()?);
        let len = r.u64()? as usize;
        if len != dimension {
            return None;
        }
        let features = r
            .take(4 * len)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        windows.push(Window {
            t_start,
            t_end,
            voiced,
            features,
        });
    }
    r.0.is_empty().then_some(windows)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn second_lookup_hits_and_returns_the_same_windows() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let windowing = Windowing::sliding(1.0, 0.5).unwrap();
        let (first, hit) = cache
            .windows(&fixture("tone_16k.wav"), FeatureSet::Egemaps, windowing)
            .unwrap();
        assert!(!hit);
        let (second, hit) = cache
            .windows(&fixture("tone_16k.wav"), FeatureSet::Egemaps, windowing)
            .unwrap();
        assert!(hit);
        assert_eq!(first, second);
    }

    #[test]
    fn a_changed_file_or_setting_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let audio = dir.path().join("a.wav");
        fs::copy(fixture("tone_16k.wav"), &audio).unwrap();
        let whole = Windowing::Whole;
        assert!(!cache.windows(&audio, FeatureSet::Egemaps, whole).unwrap().1);
        assert!(cache.windows(&audio, FeatureSet::Egemaps, whole).unwrap().1);
        assert!(
            !cache
                .windows(
                    &audio,
                    FeatureSet::Egemaps,
                    Windowing::sliding(1.0, 1.0).unwrap()
                )
                .unwrap()
                .1
        );
        assert!(!cache.windows(&audio, FeatureSet::Compare, whole).unwrap().1);
        fs::copy(fixture("noise_16k.wav"), &audio).unwrap();
        let (windows, hit) = cache.windows(&audio, FeatureSet::Egemaps, whole).unwrap();
        assert!(!hit, "new content under the same name");
        assert_eq!(
            windows,
            model_windows(&audio, FeatureSet::Egemaps, whole)
                .unwrap()
                .windows
        );
    }

    #[test]
    fn a_damaged_entry_is_a_miss_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let tone = fixture("tone_16k.wav");
        let (windows, _) = cache
            .windows(&tone, FeatureSet::Egemaps, Windowing::Whole)
            .unwrap();
        for entry in fs::read_dir(dir.path()).unwrap().flatten() {
            let data = fs::read(entry.path()).unwrap();
            fs::write(entry.path(), &data[..data.len() / 2]).unwrap();
        }
        let (again, hit) = cache
            .windows(&tone, FeatureSet::Egemaps, Windowing::Whole)
            .unwrap();
        assert!(!hit);
        assert_eq!(again, windows);
    }
}
