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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::audio::decode::DecodeOptions;
use crate::extract::{model_windows, Conditioned, Extraction, FileError, Recipe};
use crate::features::{FrontEnd, Threads, Window, Windowing};
use crate::files::{fnv1a, write_whole, FNV_OFFSET};

/// Format of an entry (02: a checksum of the entry ends it).
const MAGIC: &[u8; 8] = b"SERDFC02";

/// A folder of cached feature windows.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    /// Whether a failed write was reported: one warning per run, not one per file.
    warned: Arc<AtomicBool>,
    /// How a file missing from the cache is read, on one openSMILE thread (files are extracted
    /// in parallel).
    extraction: Extraction,
}

impl Cache {
    /// The cache in `dir` (created on first write); a file not there is decoded as `decode` says.
    pub fn new(dir: impl Into<PathBuf>, decode: DecodeOptions) -> Cache {
        Cache {
            dir: dir.into(),
            warned: Arc::default(),
            extraction: Extraction::new(decode, Threads::One),
        }
    }

    /// `features` in serd's cache folder ([`crate::dirs::cache_root`]).
    pub fn default_dir() -> PathBuf {
        crate::dirs::cache_root().join("features")
    }

    /// The windows a model judges `path` by ([`model_windows`]), under a simulated condition when
    /// one is given, from the cache when present, else extracted and stored. The boolean says
    /// whether it was a cache hit.
    pub fn windows(
        &self,
        path: &Path,
        recipe: Recipe,
        conditioned: Option<&Conditioned>,
    ) -> Result<(Vec<Window>, bool), FileError> {
        let bytes = read_file(path)?;
        let key = key(&bytes, recipe, conditioned);
        let entry = self.dir.join(format!("{key:016x}.bin"));
        if let Some(windows) = fs::read(&entry)
            .ok()
            .and_then(|data| decode(&data, key, recipe.set.dimension()))
        {
            return Ok((windows, true));
        }
        let windows = model_windows(path, recipe, &self.extraction, conditioned)?.windows;
        if let Err(e) = self.store(&entry, key, &windows) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "cannot write the feature cache {}: {e} (features are extracted but not \
                     kept; later failures are not reported)",
                    entry.display()
                );
            }
        }
        Ok((windows, false))
    }

    fn store(&self, entry: &Path, key: u64, windows: &[Window]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        write_whole(entry, &encode(key, windows))
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
/// (2: a file shorter than one window gets one whole-file window, not none; 3: front end and
/// simulated conditions in the key; 4: samples that are not numbers are read as silence; 5: the
/// resampler's 10 ms chunks).
const REVISION: u32 = 5;

/// Version of the key's encoding ([`key`]): bumped whenever what it encodes, or how, changes.
/// (1: fields written explicitly, replacing the `Debug` text of the windowing and front end.)
const KEY_ENCODING: u32 = 1;

/// The windowing as the key writes it: `whole`, or `sliding:WINDOW:HOP` in seconds.
fn windowing_key(windowing: Windowing) -> String {
    match windowing {
        Windowing::Whole => "whole".into(),
        Windowing::Sliding { window, hop } => format!("sliding:{window}:{hop}"),
    }
}

/// The front end as the key writes it: `none`, or `level:LEVEL:FLOOR` in dBFS.
fn front_key(front: Option<FrontEnd>) -> String {
    match front {
        None => "none".into(),
        Some(f) => format!("level:{}:{}", f.level_dbfs, f.floor_dbfs),
    }
}

/// FNV-1a over the file and the extraction parameters: recipe, and the condition with its seed
/// and babble sources (by path: the corpus files, which do not change under a training run).
/// Every field is written explicitly ([`KEY_ENCODING`]), never through `Debug`, so that renaming
/// a type neither invalidates nor confuses keys.
fn key(bytes: &[u8], recipe: Recipe, conditioned: Option<&Conditioned>) -> u64 {
    let mut params = format!(
        "key{KEY_ENCODING}|{}|{}|{}/{}|{}|{}|{REVISION}",
        recipe.set.name(),
        windowing_key(recipe.windowing),
        front_key(recipe.front),
        crate::features::FRONT_END_REVISION,
        env!("CARGO_PKG_VERSION"),
        crate::opensmile::BUNDLE_ID
    );
    if let Some(c) = conditioned {
        params += &format!(
            "|{}|{}|{}",
            c.condition,
            c.seed,
            crate::conditions::REVISION
        );
        if c.condition.needs_babble() {
            for path in c.babble {
                params += &format!("|{}", path.display());
            }
        }
    }
    fnv1a(fnv1a(FNV_OFFSET, params.as_bytes()), bytes)
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
    let checksum = fnv1a(FNV_OFFSET, &out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// Reads an entry back; `None` for anything unexpected (treated as a miss).
fn decode(data: &[u8], key: u64, dimension: usize) -> Option<Vec<Window>> {
    // A damaged entry (a flipped bit in a feature, too) fails its checksum.
    let (body, checksum) = data.split_at_checked(data.len().checked_sub(8)?)?;
    if fnv1a(FNV_OFFSET, body).to_le_bytes() != checksum {
        return None;
    }
    let mut r = Reader(body);
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

    /// The key is written from the recipe's values: each of them changes it, and the encoding
    /// of the windowing and front end is explicit text.
    #[test]
    fn keys_follow_every_value_of_the_recipe() {
        let recipe = Recipe {
            set: crate::features::FeatureSet::Egemaps,
            windowing: Windowing::sliding(2.0, 1.0).unwrap(),
            front: Some(FrontEnd::DEFAULT),
        };
        assert_eq!(windowing_key(recipe.windowing), "sliding:2:1");
        assert_eq!(windowing_key(Windowing::Whole), "whole");
        assert_eq!(front_key(recipe.front), "level:-20:-70");
        assert_eq!(front_key(None), "none");
        let k = |r: Recipe| key(b"audio", r, None);
        let others = [
            Recipe {
                set: crate::features::FeatureSet::Compare,
                ..recipe
            },
            Recipe {
                windowing: Windowing::sliding(2.0, 0.5).unwrap(),
                ..recipe
            },
            Recipe {
                front: None,
                ..recipe
            },
            Recipe {
                front: Some(FrontEnd {
                    floor_dbfs: -80.0,
                    ..FrontEnd::DEFAULT
                }),
                ..recipe
            },
        ];
        assert_eq!(k(recipe), k(recipe));
        for other in others {
            assert_ne!(k(recipe), k(other), "{other:?}");
        }
        assert_ne!(k(recipe), key(b"other audio", recipe, None));
    }

    /// Fuzzing the entry reader: damaged entries given a valid checksum (so the parser itself is
    /// reached) decode to windows of the right size or to a miss; damaged entries with their old
    /// checksum are always a miss.
    #[test]
    fn fuzz_damaged_entries_are_misses_or_well_formed() {
        use crate::fuzz::{cases, mutants};
        let windows: Vec<Window> = (0..3)
            .map(|i| Window {
                t_start: f64::from(i),
                t_end: f64::from(i) + 2.0,
                voiced: 0.5,
                features: vec![i as f32; 4],
            })
            .collect();
        let entry = encode(42, &windows);
        assert_eq!(decode(&entry, 42, 4), Some(windows));
        let body = &entry[..entry.len() - 8];
        for mut damaged in mutants(body, 1, cases(10_000)) {
            let checksum = fnv1a(FNV_OFFSET, &damaged);
            damaged.extend_from_slice(&checksum.to_le_bytes());
            if let Some(read) = decode(&damaged, 42, 4) {
                assert!(read.iter().all(|w| w.features.len() == 4));
            }
        }
        for damaged in mutants(&entry, 2, cases(10_000)) {
            if damaged != entry {
                assert_eq!(decode(&damaged, 42, 4), None);
            }
        }
    }
    use crate::features::{FeatureSet, Windowing};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn second_lookup_hits_and_returns_the_same_windows() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), DecodeOptions::default());
        let windowing = Windowing::sliding(1.0, 0.5).unwrap();
        let (first, hit) = cache
            .windows(
                &fixture("tone_16k.wav"),
                Recipe::raw(FeatureSet::Egemaps, windowing),
                None,
            )
            .unwrap();
        assert!(!hit);
        let (second, hit) = cache
            .windows(
                &fixture("tone_16k.wav"),
                Recipe::raw(FeatureSet::Egemaps, windowing),
                None,
            )
            .unwrap();
        assert!(hit);
        assert_eq!(first, second);
    }

    #[test]
    fn a_changed_file_or_setting_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"), DecodeOptions::default());
        let audio = dir.path().join("a.wav");
        fs::copy(fixture("tone_16k.wav"), &audio).unwrap();
        let whole = Windowing::Whole;
        assert!(
            !cache
                .windows(&audio, Recipe::raw(FeatureSet::Egemaps, whole), None)
                .unwrap()
                .1
        );
        assert!(
            cache
                .windows(&audio, Recipe::raw(FeatureSet::Egemaps, whole), None)
                .unwrap()
                .1
        );
        assert!(
            !cache
                .windows(
                    &audio,
                    Recipe::raw(FeatureSet::Egemaps, Windowing::sliding(1.0, 1.0).unwrap()),
                    None
                )
                .unwrap()
                .1
        );
        assert!(
            !cache
                .windows(&audio, Recipe::raw(FeatureSet::Compare, whole), None)
                .unwrap()
                .1
        );
        fs::copy(fixture("noise_16k.wav"), &audio).unwrap();
        let (windows, hit) = cache
            .windows(&audio, Recipe::raw(FeatureSet::Egemaps, whole), None)
            .unwrap();
        assert!(!hit, "new content under the same name");
        assert_eq!(
            windows,
            model_windows(
                &audio,
                Recipe::raw(FeatureSet::Egemaps, whole),
                &Extraction::new(DecodeOptions::default(), Threads::One),
                None
            )
            .unwrap()
            .windows
        );
    }

    #[test]
    fn a_damaged_entry_is_a_miss_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), DecodeOptions::default());
        let tone = fixture("tone_16k.wav");
        let (windows, _) = cache
            .windows(
                &tone,
                Recipe::raw(FeatureSet::Egemaps, Windowing::Whole),
                None,
            )
            .unwrap();
        for entry in fs::read_dir(dir.path()).unwrap().flatten() {
            let data = fs::read(entry.path()).unwrap();
            fs::write(entry.path(), &data[..data.len() / 2]).unwrap();
        }
        let (again, hit) = cache
            .windows(
                &tone,
                Recipe::raw(FeatureSet::Egemaps, Windowing::Whole),
                None,
            )
            .unwrap();
        assert!(!hit);
        assert_eq!(again, windows);

        // The structure intact, one feature value changed: the checksum catches it.
        for entry in fs::read_dir(dir.path()).unwrap().flatten() {
            let mut data = fs::read(entry.path()).unwrap();
            let feature = data.len() - 8 - 4;
            data[feature..feature + 4].copy_from_slice(&1e30f32.to_le_bytes());
            fs::write(entry.path(), &data).unwrap();
        }
        let (again, hit) = cache
            .windows(
                &tone,
                Recipe::raw(FeatureSet::Egemaps, Windowing::Whole),
                None,
            )
            .unwrap();
        assert!(!hit);
        assert_eq!(again, windows);
    }

    /// A cache folder that cannot be written (here: a file in its place) costs only the caching:
    /// features still come back, and no temporary file is left behind.
    #[test]
    fn an_unwritable_cache_still_gives_features() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("not-a-folder");
        fs::write(&blocked, "").unwrap();
        let cache = Cache::new(&blocked, DecodeOptions::default());
        let tone = fixture("tone_16k.wav");
        for _ in 0..2 {
            let (windows, hit) = cache
                .windows(
                    &tone,
                    Recipe::raw(FeatureSet::Egemaps, Windowing::Whole),
                    None,
                )
                .unwrap();
            assert!(!hit);
            assert_eq!(windows.len(), 1);
        }
        assert!(cache.warned.load(Ordering::Relaxed));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
