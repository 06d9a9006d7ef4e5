//! What the benches that follow pods share: one watch on the pods of the
//! bench namespace, read as newline-delimited events and handed pod by pod
//! (with the time its chunk arrived) to a recorder, and creating that
//! namespace. The scale benches record binding and Running, the node_pods
//! bench the first start of each pod.

use std::time::Instant;

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::{Value, json};

/// Opens a watch on the pods of `namespace` and calls `record` with each
/// pod it reports until the returned task is aborted.
pub async fn watch_pods<F>(
    client: &reqwest::Client,
    server: &str,
    namespace: &str,
    mut record: F,
) -> anyhow::Result<tokio::task::JoinHandle<()>>
where
    F: FnMut(&Value, Instant) + Send + 'static,
{
    let url =
        format!("{server}/api/v1/namespaces/{namespace}/pods?watch=true&allowWatchBookmarks=false");
    let resp = client
        .get(&url)
        .send()
        .await
        .context("opening the pod watch")?;
    if !resp.status().is_success() {
        bail!("watch answered {}", resp.status());
    }
    Ok(tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            let now = Instant::now();
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                if let Ok(event) = serde_json::from_slice::<Value>(&line) {
                    record(&event["object"], now);
                }
            }
        }
    }))
}

pub async fn create_namespace(
    client: &reqwest::Client,
    server: &str,
    name: &str,
) -> anyhow::Result<()> {
    let resp = client
        .post(format!("{server}/api/v1/namespaces"))
        .json(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("creating namespace {name}: {}", resp.status());
    }
    Ok(())
}
