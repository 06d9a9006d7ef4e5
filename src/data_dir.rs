//! The state directory: created on first use and locked, so two processes
//! never share one SQLite database.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// An open, locked data dir. The lock is held while this value lives.
pub struct DataDir {
    pub path: PathBuf,
    _lock: File,
}

impl DataDir {
    pub fn open(path: &Path) -> anyhow::Result<DataDir> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("creating data dir {}", path.display()))?;
        let path = path
            .canonicalize()
            .with_context(|| format!("resolving {}", path.display()))?;
        let lock_path = path.join("lock");
        let lock = File::create(&lock_path)
            .with_context(|| format!("creating {}", lock_path.display()))?;
        lock.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "data dir {} is in use by another wasmpod process",
                path.display()
            )
        })?;
        Ok(DataDir { path, _lock: lock })
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.path.join("state.db").display())
    }
}
