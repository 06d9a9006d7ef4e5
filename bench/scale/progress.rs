//! Following a scale run through one watch on the bench namespace: when
//! the first and last of the pods were seen bound to a node and seen with
//! every container running, and how they spread over nodes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

#[path = "pod_watch.rs"]
mod pod_watch;

pub use pod_watch::create_namespace;

/// What the watch saw so far.
#[derive(Default)]
pub struct Counts {
    pub bound: HashSet<String>,
    pub running: HashSet<String>,
    pub per_node: HashMap<String, usize>,
    pub last_bound: Option<Instant>,
    pub last_running: Option<Instant>,
}

/// Shared view of the watch's counts.
#[derive(Clone, Default)]
pub struct Progress {
    counts: Arc<Mutex<Counts>>,
}

impl Progress {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until `want` pods are running, printing progress to stderr
    /// every 5 s; fails after `timeout`.
    pub async fn wait_running(&self, want: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut report = Instant::now();
        loop {
            let (bound, running) = {
                let c = self.lock();
                (c.bound.len(), c.running.len())
            };
            if running >= want {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("after {timeout:?}: {bound} of {want} pods bound, {running} running");
            }
            if report.elapsed() >= Duration::from_secs(5) {
                eprintln!("  {bound} bound, {running} running");
                report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// True when every container of the pod runs.
fn running(pod: &Value) -> bool {
    let want = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let up = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| !s["state"]["running"].is_null())
        .count();
    want > 0 && up == want && pod["status"]["phase"] == "Running"
}

/// Opens a watch on the pods of `namespace` that records progress until
/// the returned task is aborted.
pub async fn watch(
    client: &reqwest::Client,
    server: &str,
    namespace: &str,
) -> anyhow::Result<(Progress, tokio::task::JoinHandle<()>)> {
    let progress = Progress::default();
    let record = progress.clone();
    let task = pod_watch::watch_pods(client, server, namespace, move |pod, now| {
        let Some(name) = pod["metadata"]["name"].as_str() else {
            return;
        };
        let mut c = record.lock();
        if let Some(node) = pod["spec"]["nodeName"].as_str()
            && c.bound.insert(name.to_string())
        {
            *c.per_node.entry(node.to_string()).or_default() += 1;
            c.last_bound = Some(now);
        }
        if running(pod) && c.running.insert(name.to_string()) {
            c.last_running = Some(now);
        }
    })
    .await?;
    Ok((progress, task))
}

/// Creates a Deployment of `replicas` pods running `image` with `args`.
pub async fn create_deployment(
    client: &reqwest::Client,
    server: &str,
    namespace: &str,
    name: &str,
    replicas: usize,
    image: &str,
    args: &[&str],
) -> anyhow::Result<()> {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "args": args}]},
            },
        },
    });
    let resp = client
        .post(format!(
            "{server}/apis/apps/v1/namespaces/{namespace}/deployments"
        ))
        .json(&deployment)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!(
            "creating deployment {name}: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// How many nodes report Ready.
pub async fn ready_nodes(client: &reqwest::Client, server: &str) -> anyhow::Result<usize> {
    let list: Value = client
        .get(format!("{server}/api/v1/nodes"))
        .send()
        .await?
        .json()
        .await?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count())
}
