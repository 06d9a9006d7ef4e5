//! Creating pods and seeing them start: a watch on the bench namespace
//! timestamps the first event in which each pod's containers run (or have
//! run: a one-shot program may be done before its status is written), and
//! creates are sent through one keep-alive client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

#[path = "../scale/pod_watch.rs"]
mod pod_watch;

pub use pod_watch::create_namespace;

/// When each pod was first seen started, by name.
#[derive(Clone, Default)]
pub struct Seen {
    started: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Seen {
    pub fn get(&self, name: &str) -> Option<Instant> {
        self.lock().get(name).copied()
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// True when every container of the pod has started (is running or has
/// terminated after starting).
fn started(pod: &Value) -> bool {
    let want = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let statuses = pod["status"]["containerStatuses"].as_array();
    let up = statuses
        .into_iter()
        .flatten()
        .filter(|s| {
            !s["state"]["running"].is_null() || !s["state"]["terminated"]["startedAt"].is_null()
        })
        .count();
    want > 0 && up == want
}

/// Opens a watch on the pods of `namespace` and records start times until
/// the returned task is aborted.
pub async fn watch(
    client: &reqwest::Client,
    server: &str,
    namespace: &str,
) -> anyhow::Result<(Seen, tokio::task::JoinHandle<()>)> {
    let seen = Seen::default();
    let record = seen.clone();
    let task = pod_watch::watch_pods(client, server, namespace, move |pod, now| {
        if started(pod)
            && let Some(name) = pod["metadata"]["name"].as_str()
        {
            record.lock().entry(name.to_string()).or_insert(now);
        }
    })
    .await?;
    Ok((seen, task))
}

/// A pod bound to `node` running `image` with `args`.
pub fn pod(name: &str, node: &str, image: &str, args: &[&str], extra: Value) -> Value {
    let mut container = json!({"name": "app", "image": image, "args": args});
    if let (Some(c), Some(e)) = (container.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "restartPolicy": "Never", "containers": [container]},
    })
}

/// Creates `pod` in `namespace`; returns when the create was sent and answered.
pub async fn create(
    client: &reqwest::Client,
    server: &str,
    namespace: &str,
    pod: &Value,
) -> anyhow::Result<Instant> {
    let sent = Instant::now();
    let resp = client
        .post(format!("{server}/api/v1/namespaces/{namespace}/pods"))
        .json(pod)
        .send()
        .await
        .context("creating a pod")?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        bail!("creating a pod answered {status}: {text}");
    }
    Ok(sent)
}

/// Waits until the watch saw `name` started; returns the time from `sent`.
pub async fn started_after(
    seen: &Seen,
    name: &str,
    sent: Instant,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(at) = seen.get(name) {
            return Ok(at.saturating_duration_since(sent));
        }
        if Instant::now() > deadline {
            bail!("pod {name} did not start within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub async fn delete_all(
    client: &reqwest::Client,
    server: &str,
    namespace: &str,
) -> anyhow::Result<()> {
    let list: Value = client
        .get(format!("{server}/api/v1/namespaces/{namespace}/pods"))
        .send()
        .await?
        .json()
        .await?;
    for pod in list["items"].as_array().into_iter().flatten() {
        let Some(name) = pod["metadata"]["name"].as_str() else {
            continue;
        };
        let resp = client
            .delete(format!(
                "{server}/api/v1/namespaces/{namespace}/pods/{name}?gracePeriodSeconds=0"
            ))
            .send()
            .await?;
        if !resp.status().is_success() && resp.status() != reqwest::StatusCode::NOT_FOUND {
            bail!("deleting pod {namespace}/{name}: {}", resp.status());
        }
    }
    Ok(())
}
