//! The node's own record of the container starts it made, written before
//! each start. The API status alone cannot cover a start whose report was
//! lost when the node went away; with this record, adoption counts such a
//! run as lost instead of running the container a second time.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::agent::lifecycle::Checkpointed;

const FILE: &str = "starts.json";

/// The start counts of one pod's containers, mirrored in `<pod dir>/starts.json`.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    runs: HashMap<String, u32>,
}

impl Checkpoint {
    /// Reads the record of a pod; a missing or unreadable one is empty.
    pub async fn load(pod_dir: &Path) -> Self {
        let path = pod_dir.join(FILE);
        let runs = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), error = %e, "ignoring an unreadable start record");
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        };
        Self { path, runs }
    }

    pub fn checkpointed(&self) -> Checkpointed {
        Checkpointed {
            runs: self.runs.clone(),
        }
    }

    /// Records that `container` has started `runs` times, before the start
    /// happens. The file is replaced atomically; it is not synced to disk,
    /// so the record survives the node process dying (the case adoption
    /// handles) at no cost to start latency, though not a host crash.
    pub async fn record(&mut self, container: &str, runs: u32) -> io::Result<()> {
        let previous = self.runs.insert(container.to_string(), runs);
        let result = self.write().await;
        if result.is_err() {
            match previous {
                Some(p) => self.runs.insert(container.to_string(), p),
                None => self.runs.remove(container),
            };
        }
        result
    }

    async fn write(&self) -> io::Result<()> {
        let bytes = serde_json::to_vec(&self.runs).map_err(io::Error::other)?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recorded_starts_survive_a_reload() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let pod_dir = dir.path().join("pod");
        let mut c = Checkpoint::load(&pod_dir).await;
        assert!(c.checkpointed().runs.is_empty());
        c.record("app", 1).await.expect("records");
        c.record("app", 2).await.expect("records");
        c.record("init", 1).await.expect("records");
        let reloaded = Checkpoint::load(&pod_dir).await.checkpointed();
        assert_eq!(reloaded.runs.get("app"), Some(&2));
        assert_eq!(reloaded.runs.get("init"), Some(&1));
    }

    #[tokio::test]
    async fn a_corrupt_record_reads_as_empty() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join(FILE), b"{not json").expect("writes");
        assert!(
            Checkpoint::load(dir.path())
                .await
                .checkpointed()
                .runs
                .is_empty()
        );
    }
}
