//! Files written whole, and named or checked by their content.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The starting value of [`fnv1a`].
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bit, continuing from `h` ([`FNV_OFFSET`] to start): enough to tell contents apart
/// (cache keys, checksums, generated file names), and no dependency.
pub fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Writes `bytes` to `path` through a temporary file of this writer's own, renamed into place:
/// a reader never sees half a file, and concurrent writers (threads or processes) of the same
/// path never write into each other's file. Nothing is left behind on failure.
pub fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let written = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A folder filled beside `target` and then put in its place whole ([`Staged::commit`]): until
/// then `target` is untouched, so a run killed or failing half-way (a full disk) leaves the old
/// folder as it was, never a mix of old and new files. Dropped without a commit, the staging folder
/// is removed; one left by a killed process is removed by the next staging of the same target.
pub struct Staged {
    target: PathBuf,
    dir: PathBuf,
    committed: bool,
}

impl Staged {
    /// Creates the empty staging folder, a hidden sibling of `target`.
    pub fn new(target: &Path) -> io::Result<Staged> {
        let (parent, name) = parent_and_name(target)?;
        fs::create_dir_all(&parent)?;
        let prefix = staging_prefix(name);
        remove_abandoned(&parent, &prefix);
        let mut dir_name = prefix;
        dir_name.push(std::process::id().to_string());
        let dir = parent.join(dir_name);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir(&dir)?;
        Ok(Staged {
            target: target.to_path_buf(),
            dir,
            committed: false,
        })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Puts the staged folder in `target`'s place: in one atomic exchange where the system offers
    /// one (Linux), else by two renames (the old folder is kept under a hidden name in between).
    /// The old folder's files are then removed.
    pub fn commit(mut self) -> io::Result<()> {
        if !self.target.exists() {
            fs::rename(&self.dir, &self.target)?;
        } else if exchange(&self.dir, &self.target).is_ok() {
            // The old folder, now under the staging name.
            remove_old(&self.dir, &self.target);
        } else {
            let mut old = self.dir.as_os_str().to_os_string();
            old.push(".old");
            let old = PathBuf::from(old);
            fs::rename(&self.target, &old)?;
            if let Err(e) = fs::rename(&self.dir, &self.target) {
                let _ = fs::rename(&old, &self.target);
                return Err(e);
            }
            remove_old(&old, &self.target);
        }
        self.committed = true;
        Ok(())
    }
}

/// Removes `old`, the folder that `target` replaced; one that cannot be removed is named in a
/// warning (the new folder is in place: that is no failure, but the old one is left behind).
fn remove_old(old: &Path, target: &Path) {
    if let Err(e) = fs::remove_dir_all(old) {
        log::warn!(
            "{} is in place, but the folder it replaced could not be removed ({e}): it is left \
             at {}; remove it by hand",
            target.display(),
            old.display()
        );
    }
}

/// The folder `target` goes into (`.` for a bare name) and its name.
fn parent_and_name(target: &Path) -> io::Result<(PathBuf, &std::ffi::OsStr)> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a folder name"))?;
    Ok((parent, name))
}

/// Checks, before long work, that a folder can be put at `target` the way [`Staged`] will put
/// it: its parent exists or can be created, and takes new entries (a folder is created in it and
/// removed again: the one test that permissions, read-only mounts and ACLs all answer). `train`
/// calls it on `--out` before the cross-validation, so that a folder it cannot write is an error
/// at once, not after hours.
pub fn check_writable_parent(target: &Path) -> io::Result<()> {
    let (parent, name) = parent_and_name(target)?;
    let fail = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", parent.display()))
    };
    fs::create_dir_all(&parent).map_err(|e| fail("cannot create", e))?;
    let mut probe = OsString::from(".");
    probe.push(name);
    probe.push(format!(".probe-{}", std::process::id()));
    let probe = parent.join(probe);
    fs::create_dir(&probe).map_err(|e| fail("cannot write in", e))?;
    let _ = fs::remove_dir(&probe);
    Ok(())
}

impl Staged {
    /// Puts the staged folder in place only if `target` does not exist yet; if another process
    /// put an (identical) folder there first, theirs stays and this one is removed.
    pub fn commit_if_absent(mut self) -> io::Result<()> {
        match fs::rename(&self.dir, &self.target) {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(_) if self.target.is_dir() => Ok(()), // Drop removes ours
            Err(e) => Err(e),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Writes `files` (relative name, content) into `dir` once: if `dir` already holds a complete
/// copy (its `.complete` marker is written last), nothing is done. Used for what the binary
/// carries (openSMILE's files, the bundled model), under folders named by their content's hash,
/// so concurrent processes and stale copies are never a problem.
pub fn unpack_once<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> io::Result<()> {
    if dir.join(".complete").is_file() {
        return Ok(());
    }
    let staged = Staged::new(dir)?;
    for (name, bytes) in files {
        let path = staged.path().join(name);
        fs::create_dir_all(path.parent().unwrap_or(staged.path()))?;
        fs::write(&path, bytes)?;
    }
    fs::write(staged.path().join(".complete"), "")?;
    // Another process may have unpacked the same files first: theirs is identical.
    staged.commit_if_absent()
}

/// `.NAME.partial-`: staging folders of `NAME` start with it and end with their writer's pid.
fn staging_prefix(name: &std::ffi::OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".partial-");
    prefix
}

/// Removes staging folders under `parent` whose writing process no longer runs (on systems
/// with /proc; elsewhere they are left alone).
fn remove_abandoned(parent: &Path, prefix: &std::ffi::OsStr) {
    let (Ok(entries), true) = (fs::read_dir(parent), Path::new("/proc/self").exists()) else {
        return;
    };
    let prefix = prefix.to_string_lossy();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&*prefix) else {
            continue;
        };
        let pid = pid.strip_suffix(".old").unwrap_or(pid);
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_parent_passes_and_leaves_nothing_and_a_read_only_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        check_writable_parent(&dir.path().join("new/deeper/model")).unwrap();
        assert!(dir.path().join("new/deeper").is_dir());
        assert_eq!(
            fs::read_dir(dir.path().join("new/deeper")).unwrap().count(),
            0
        );
        assert!(check_writable_parent(Path::new("/")).is_err());
        // Permissions do not bind root: check only where they do.
        let locked = dir.path().join("locked");
        fs::create_dir(&locked).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
        if fs::create_dir(locked.join("x")).is_err() {
            let err = check_writable_parent(&locked.join("model")).unwrap_err();
            assert!(err.to_string().contains("cannot write in"), "{err}");
            assert!(err.to_string().contains("locked"), "{err}");
        }
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        // From the FNV reference test suite (Fowler, Noll, Vo): "" and "a" in 64-bit FNV-1a.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            fnv1a(fnv1a(FNV_OFFSET, b"fo"), b"o"),
            fnv1a(FNV_OFFSET, b"foo")
        );
    }

    #[test]
    fn a_whole_write_replaces_the_file_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        write_whole(&path, b"one").unwrap();
        write_whole(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(write_whole(&dir.path().join("missing/f.bin"), b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_staged_folder_replaces_the_old_one_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("model");
        // New target: the staged folder becomes it.
        let staged = Staged::new(&target).unwrap();
        fs::write(staged.path().join("a"), "1").unwrap();
        fs::write(staged.path().join("b"), "1").unwrap();
        staged.commit().unwrap();
        assert_eq!(listing(&target), ["a", "b"]);
        // Abandoned half-way: the old folder is untouched and nothing is left beside it.
        let staged = Staged::new(&target).unwrap();
        fs::write(staged.path().join("a"), "2").unwrap();
        drop(staged);
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "1");
        assert_eq!(listing(root.path()), ["model"]);
        // Committed over an existing folder: exactly the new files, no old one left over.
        let staged = Staged::new(&target).unwrap();
        fs::write(staged.path().join("a"), "3").unwrap();
        staged.commit().unwrap();
        assert_eq!(listing(&target), ["a"]);
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "3");
        assert_eq!(listing(root.path()), ["model"]);
    }

    #[test]
    fn commit_if_absent_keeps_a_folder_already_there() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("bundle");
        let first = Staged::new(&target).unwrap();
        fs::write(first.path().join("f"), "first").unwrap();
        first.commit_if_absent().unwrap();
        let second = Staged::new(&target).unwrap();
        fs::write(second.path().join("f"), "second").unwrap();
        second.commit_if_absent().unwrap();
        assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "first");
        assert_eq!(listing(root.path()), ["bundle"]);
    }

    #[test]
    fn a_killed_writer_s_staging_folder_is_removed_by_the_next() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("model");
        // No process has pid 4000000000 (above Linux's pid_max).
        let abandoned = root.path().join(".model.partial-4000000000");
        fs::create_dir(&abandoned).unwrap();
        fs::write(abandoned.join("weights-0.bpk"), "half").unwrap();
        let staged = Staged::new(&target).unwrap();
        if Path::new("/proc/self").exists() {
            assert!(!abandoned.exists());
        }
        staged.commit().unwrap();
        assert!(target.is_dir());
    }
}
