//! The on-disk cache of compiled machine code, so a program is compiled once
//! per node and engine configuration, not once per start.
//!
//! Entries are `<dir>/<sha256 of the wasm bytes>-<engine hash>.cwasm`, where
//! the engine hash is [`Engine::precompile_compatibility_hash`]: a wasmtime
//! upgrade or a changed engine setting uses new file names instead of
//! loading code built for another configuration. Files are written to a
//! temporary name and renamed into place, so a reader never sees a partial
//! file and a file, once named, never changes. Opening the cache removes
//! entries of other engine configurations and abandoned temporary files,
//! which would otherwise only take disk space.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::RuntimeError;

/// Distinguishes temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The compiled-code directory of one engine.
pub(crate) struct CompiledCache {
    dir: PathBuf,
    engine_hash: String,
}

impl CompiledCache {
    pub(crate) fn open(dir: PathBuf, engine: &Engine) -> Result<CompiledCache, RuntimeError> {
        fs::create_dir_all(&dir).map_err(|source| RuntimeError::CacheDir {
            path: dir.clone(),
            source,
        })?;
        let mut hasher = Sha256Hasher::default();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex(&hasher.0.finalize())[..16].to_owned();
        let cache = CompiledCache { dir, engine_hash };
        cache.prune();
        Ok(cache)
    }

    /// Removes files this cache wrote that no engine of this configuration
    /// can use. Files not named like cache entries are left alone.
    fn prune(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let current = format!("-{}.cwasm", self.engine_hash);
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let ours = name.len() > 65 && name.as_bytes()[64] == b'-' && is_hex(&name[..64]);
            let stale = name.contains(".tmp.") || !name.ends_with(&current);
            if ours && stale {
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::debug!(path = %path.display(), "removed stale compiled code")
                    }
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "cannot remove stale compiled code")
                    }
                }
            }
        }
    }

    /// Where the compiled code of the program with this sha256 (hex) lives.
    pub(crate) fn path(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256_hex}-{}.cwasm", self.engine_hash))
    }

    /// Stores compiled code under `path`, atomically. Failure only costs a
    /// recompilation later, so it is reported and otherwise ignored.
    pub(crate) fn store(&self, path: &Path, compiled: &[u8]) {
        if let Err(error) = write_atomically(path, compiled) {
            tracing::warn!(path = %path.display(), %error, "cannot write compiled-code cache entry");
        }
    }

    /// Forgets an entry that could not be loaded.
    pub(crate) fn discard(&self, path: &Path) {
        if let Err(error) = fs::remove_file(path) {
            tracing::warn!(path = %path.display(), %error, "cannot remove unusable cache entry");
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        // The temporary file may or may not exist; either way it is garbage.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Loads code this cache stored earlier.
///
/// This is the one place of the node that uses `unsafe`: wasmtime cannot
/// validate machine code, so deserializing arbitrary bytes could execute
/// anything. It is sound here because
/// - only this module writes into the cache directory, and only bytes that
///   `Module::serialize`/`Component::serialize` produced for an engine with
///   this exact compatibility hash (which is part of the file name, and which
///   wasmtime checks again in the file's header);
/// - files are renamed into place complete and never modified afterwards (a
///   rewrite renames a new file over the name, leaving existing memory
///   mappings of the old file intact), so the mapped file stays unchanged for
///   the lifetime of the returned code, as wasmtime requires;
/// - user-supplied bytes never reach this function: `Runtime::load` only
///   accepts WebAssembly, rejecting precompiled artifacts.
#[allow(unsafe_code)]
pub(crate) mod trusted {
    use super::*;

    pub(crate) fn load_module(engine: &Engine, path: &Path) -> wasmtime::Result<wasmtime::Module> {
        // SAFETY: see the module documentation: the file was written by this
        // cache for this engine configuration and is never modified.
        unsafe { wasmtime::Module::deserialize_file(engine, path) }
    }

    pub(crate) fn load_component(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
        // SAFETY: as for `load_module`.
        unsafe { Component::deserialize_file(engine, path) }
    }
}

/// Lower-case hexadecimal of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Feeds `Hash` impls into SHA-256, so the engine hash is stable across
/// processes and Rust versions (unlike `DefaultHasher`).
#[derive(Default)]
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_hash_is_stable_for_one_configuration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::default();
        let a = CompiledCache::open(dir.path().join("a"), &engine).expect("open cache");
        let b = CompiledCache::open(dir.path().join("b"), &Engine::default()).expect("open cache");
        assert_eq!(a.engine_hash, b.engine_hash);
        assert_eq!(a.engine_hash.len(), 16);
    }

    #[test]
    fn opening_removes_entries_of_other_engines_and_leftover_temporaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::default();
        let cache = CompiledCache::open(dir.path().to_path_buf(), &engine).expect("open cache");
        let sha = "ab".repeat(32);
        let current = cache.path(&sha);
        let other_engine = dir.path().join(format!("{sha}-0123456789abcdef.cwasm"));
        let temporary = current.with_extension("tmp.1.0");
        let unrelated = dir.path().join("notes.txt");
        for path in [&current, &other_engine, &temporary, &unrelated] {
            fs::write(path, b"x").expect("write");
        }
        CompiledCache::open(dir.path().to_path_buf(), &engine).expect("reopen cache");
        assert!(current.exists());
        assert!(!other_engine.exists());
        assert!(!temporary.exists());
        assert!(unrelated.exists());
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.cwasm");
        write_atomically(&path, b"first").expect("write");
        write_atomically(&path, b"second").expect("write");
        assert_eq!(fs::read(&path).unwrap_or_default(), b"second");
        let leftovers = fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0);
        assert_eq!(leftovers, 1, "no temporary files are left behind");
    }
}
