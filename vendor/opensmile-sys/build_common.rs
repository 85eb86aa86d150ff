//! What both build scripts need, serd's (`#[path]`-moduled from the repository root) and
//! opensmile-sys's: listing a folder's files and hashing them. Build scripts share no code without
//! a crate of their own, so this file is the one place it is written.

use std::fs;
use std::path::{Path, PathBuf};

/// Every file below `dir`, recursively, as (`prefix/relative name`, path), appended to `files`; a
/// folder that cannot be read adds nothing.
pub fn collect(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        if path.is_dir() {
            collect(&path, &name, files);
        } else {
            files.push((name, path));
        }
    }
}

/// FNV-1a, 64 bit: enough to tell versions of files apart, and no build dependency.
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}
