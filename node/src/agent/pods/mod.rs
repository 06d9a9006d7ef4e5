//! The pods bound to this node: the manager follows the watch of
//! `spec.nodeName=<node>` and keeps one worker per pod UID, adopting the
//! pods already bound when the node starts; each worker drives its pod's
//! lifecycle on the container runtime.

pub mod api;
mod checkpoint;
mod claims;
pub mod container_spec;
pub mod host_ports;
pub mod network;
pub mod pod_ips;
mod reporter;
pub mod volumes;
mod worker;

#[cfg(test)]
mod fake_api;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use wasmpod_api::k8s_openapi::api::core::v1::Pod;

use super::client::{Change, ClientError, Watcher};
use super::clock::Clock;
use super::container_runtime::ContainerRuntime;
use super::lifecycle::{BackoffConfig, HostFacts};
use api::PodApi;

/// What every pod worker of the node needs to know.
#[derive(Debug, Clone)]
pub struct PodWorkerConfig {
    pub node_name: String,
    /// Pods' directories live in `<data_dir>/pods`, claims' in `<data_dir>/volumes`.
    pub data_dir: PathBuf,
    pub backoff: BackoffConfig,
    pub host: HostFacts,
    /// Allocatable CPU and memory, for `resourceFieldRef` without a limit.
    pub node_cpu_millis: u64,
    pub node_memory_bytes: u64,
    /// How often ConfigMap, Secret and downward API files are refreshed.
    pub volume_resync: Duration,
    pub clock: Clock,
    /// Where pods get their IPs and virtual network; without it pods run
    /// with no network and report no pod IP.
    pub network: Option<network::PodNetworking>,
}

impl PodWorkerConfig {
    pub fn new(node_name: impl Into<String>, data_dir: PathBuf) -> Self {
        Self {
            node_name: node_name.into(),
            data_dir,
            backoff: BackoffConfig::default(),
            host: HostFacts::default(),
            node_cpu_millis: 0,
            node_memory_bytes: 0,
            volume_resync: Duration::from_secs(60),
            clock: Clock::system(),
            network: None,
        }
    }
}

/// News about a pod for its worker.
#[derive(Debug, Clone)]
pub enum PodUpdate {
    /// The pod object changed (deletion requests arrive this way).
    Changed(Box<Pod>),
    /// The pod object is gone from the API.
    Removed,
}

/// `<data_dir>/pods/<uid>`: a pod's volumes, logs and start record.
pub fn pod_dir(data_dir: &Path, pod_uid: &str) -> PathBuf {
    data_dir.join("pods").join(pod_uid)
}

/// The file that holds the output of one run of a container:
/// `<pod dir>/logs/<container>/<attempt>.log`, `attempt` counting from 0
/// (the run's restartCount), so `--previous` is the attempt before.
pub fn log_path(data_dir: &Path, pod_uid: &str, container: &str, attempt: u32) -> PathBuf {
    pod_dir(data_dir, pod_uid)
        .join("logs")
        .join(container)
        .join(format!("{attempt}.log"))
}

struct WorkerHandle {
    updates: mpsc::UnboundedSender<PodUpdate>,
    task: JoinHandle<()>,
}

/// Keeps one worker per pod bound to the node.
pub struct PodManager<R: ContainerRuntime, A: PodApi> {
    runtime: Arc<R>,
    api: A,
    config: Arc<PodWorkerConfig>,
    workers: HashMap<String, WorkerHandle>,
}

impl<R: ContainerRuntime, A: PodApi> PodManager<R, A> {
    pub fn new(runtime: Arc<R>, api: A, config: PodWorkerConfig) -> Self {
        Self {
            runtime,
            api,
            config: Arc::new(config),
            workers: HashMap::new(),
        }
    }

    /// Follows the watch of the node's pods, forever.
    pub async fn run(mut self, mut watcher: Watcher<Pod>) {
        loop {
            match watcher.next().await {
                Ok(change) => self.handle(change),
                Err(e) => log_watch_error(&e),
            }
        }
    }

    /// Applies one change of the watched set.
    pub fn handle(&mut self, change: Change<Pod>) {
        self.reap();
        match change {
            Change::Restarted(pods) => {
                let present: HashSet<String> = pods.iter().filter_map(uid).collect();
                let gone: Vec<String> = self
                    .workers
                    .keys()
                    .filter(|u| !present.contains(*u))
                    .cloned()
                    .collect();
                for u in gone {
                    self.remove(&u);
                }
                for pod in pods {
                    self.apply(pod);
                }
            }
            Change::Applied(pod) => self.apply(pod),
            Change::Deleted(pod) => {
                if let Some(u) = uid(&pod) {
                    self.remove(&u);
                }
            }
        }
    }

    /// How many pods have a worker.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    fn apply(&mut self, pod: Pod) {
        let Some(u) = uid(&pod) else {
            return;
        };
        let bound_here = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
            == Some(self.config.node_name.as_str());
        if !bound_here {
            return;
        }
        let pod = match self.workers.get(&u) {
            Some(w) => match w.updates.send(PodUpdate::Changed(Box::new(pod))) {
                Ok(()) => return,
                // The worker ended (it was stopped): start a new one.
                Err(mpsc::error::SendError(PodUpdate::Changed(pod))) => *pod,
                Err(mpsc::error::SendError(PodUpdate::Removed)) => return,
            },
            None => pod,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(worker::run(
            Arc::clone(&self.runtime),
            self.api.clone(),
            Arc::clone(&self.config),
            pod,
            rx,
        ));
        self.workers.insert(u, WorkerHandle { updates: tx, task });
    }

    fn remove(&mut self, uid: &str) {
        if let Some(w) = self.workers.remove(uid) {
            // The worker stops what runs, cleans up and ends on its own.
            let _ = w.updates.send(PodUpdate::Removed);
        }
    }

    /// Forgets workers that ended.
    fn reap(&mut self) {
        self.workers.retain(|_, w| !w.task.is_finished());
    }
}

impl<R: ContainerRuntime, A: PodApi> Drop for PodManager<R, A> {
    /// Stops every worker (and so every container) when the agent stops.
    fn drop(&mut self) {
        for w in self.workers.values() {
            w.task.abort();
        }
    }
}

fn uid(pod: &Pod) -> Option<String> {
    pod.metadata.uid.clone().filter(|u| !u.is_empty())
}

fn log_watch_error(e: &ClientError) {
    tracing::warn!(error = %super::error_chain(e), "watching the node's pods");
}
