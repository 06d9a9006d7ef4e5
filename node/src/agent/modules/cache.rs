//! The node's module cache: modules on disk keyed by digest, and small
//! records of which digest a tag or URL resolved to last, so that
//! `IfNotPresent` and `Never` run a tagged module without the network.
//!
//! Layout under the cache dir: `sha256/<hex>.wasm` (one file per module)
//! and `refs/<sha256 of the reference>` (the digest, then the reference,
//! one per line). Every file is written to a temporary file in the same
//! directory, fsynced and renamed into place, so a crash leaves either the
//! old file or the complete new one. A module read back is hashed again;
//! one whose bytes no longer match its name is removed and treated as
//! absent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The digest (`sha256:<hex>`) of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Modules on disk by digest, plus reference records.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
}

impl ModuleCache {
    /// A cache in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> ModuleCache {
        ModuleCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let well_formed = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| self.dir.join("sha256").join(format!("{hex}.wasm")))
    }

    fn ref_path(&self, reference: &str) -> PathBuf {
        self.dir
            .join("refs")
            .join(hex(&Sha256::digest(reference.as_bytes())))
    }

    /// The module with `digest`, if cached and intact.
    pub async fn get(&self, digest: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(None);
        };
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let actual = digest_of(&bytes);
        if actual != digest {
            tracing::warn!(path = %path.display(), %digest, %actual, "removing a corrupt cached module");
            remove_if_present(&path).await?;
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Stores `bytes` under their digest, which the caller has verified.
    pub async fn put(&self, digest: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        let Some(path) = self.blob_path(digest) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{digest:?} is not a sha256 digest"),
            ));
        };
        write_atomically(path, bytes).await
    }

    /// The digest `reference` (`tag:app:v1`, `url:https://…`) resolved to
    /// last, if recorded.
    pub async fn resolved(&self, reference: &str) -> std::io::Result<Option<String>> {
        match tokio::fs::read_to_string(self.ref_path(reference)).await {
            Ok(text) => {
                let mut lines = text.lines();
                let digest = lines.next().unwrap_or("");
                // A record of another reference (a hash collision) or a
                // damaged one is as good as none.
                if lines.next() != Some(reference) || self.blob_path(digest).is_none() {
                    return Ok(None);
                }
                Ok(Some(digest.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records that `reference` resolved to `digest`.
    pub async fn record(&self, reference: &str, digest: &str) -> std::io::Result<()> {
        let text = format!("{digest}\n{reference}\n");
        write_atomically(self.ref_path(reference), text.into_bytes()).await
    }
}

async fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `bytes` to a temporary file next to `path`, fsyncs it, renames
/// it to `path` and fsyncs the directory.
async fn write_atomically(path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || write_atomically_blocking(&path, &bytes))
        .await
        .map_err(std::io::Error::other)?
}

fn write_atomically_blocking(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("a cache path has a directory"))?;
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        // A failed write leaves no partial file behind.
        let _ = std::fs::remove_file(&temp);
        return written;
    }
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn modules_round_trip_by_digest() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let cache = ModuleCache::new(dir.path().join("modules"));
        let bytes = b"\0asm\x01\0\0\0".to_vec();
        let digest = digest_of(&bytes);
        assert_eq!(cache.get(&digest).await.expect("reads"), None);
        cache.put(&digest, bytes.clone()).await.expect("writes");
        assert_eq!(cache.get(&digest).await.expect("reads"), Some(bytes));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("modules/sha256"))
            .expect("the blob dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files are renamed away");
    }

    #[tokio::test]
    async fn a_corrupt_module_is_removed_and_reads_as_absent() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let cache = ModuleCache::new(dir.path());
        let bytes = b"\0asm\x01\0\0\0".to_vec();
        let digest = digest_of(&bytes);
        cache.put(&digest, bytes).await.expect("writes");
        let path = cache.blob_path(&digest).expect("a path");
        std::fs::write(&path, b"tampered").expect("overwrites");
        assert_eq!(cache.get(&digest).await.expect("reads"), None);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn references_record_their_last_digest() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let cache = ModuleCache::new(dir.path());
        let first = digest_of(b"1");
        let second = digest_of(b"2");
        assert_eq!(cache.resolved("tag:app:v1").await.expect("reads"), None);
        cache.record("tag:app:v1", &first).await.expect("writes");
        cache.record("tag:app:v1", &second).await.expect("writes");
        assert_eq!(
            cache.resolved("tag:app:v1").await.expect("reads"),
            Some(second)
        );
        assert_eq!(cache.resolved("tag:app:v2").await.expect("reads"), None);
    }

    #[tokio::test]
    async fn malformed_digests_are_never_paths() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let cache = ModuleCache::new(dir.path());
        assert_eq!(
            cache.get("sha256:../../etc/passwd").await.expect("reads"),
            None
        );
        assert!(cache.put("sha256:zz", Vec::new()).await.is_err());
    }
}
