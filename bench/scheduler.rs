//! `cargo bench --bench scheduler`: scheduler throughput with 1,000 fake
//! nodes (DESIGN.md §7). An API server on SQLite runs in this process
//! without controllers; 1,000 Ready nodes and the pods are created through
//! its API; then the scheduler is started (leader election, informers,
//! binding through `pods/{name}/binding` over loopback HTTP, events) and
//! the time until every pod is bound is measured with a watch. The report
//! (stdout) prints the figure beside its target and anchor; progress goes
//! to stderr.

#[path = "bench_main.rs"]
mod bench_main;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::json;
use wasmpod_api::client::{ApiClient, Change, ListParams};
use wasmpod_api::k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use wasmpod_control::controllers::{self, CancellationToken, ControllerConfig};
use wasmpod_control::server::{Server, ServerConfig};
use wasmpod_control::store::StoreOptions;

const NODES: usize = 1_000;
const PODS: usize = 20_000;
const CREATE_CONCURRENCY: usize = 32;
const TARGET: f64 = 2_000.0;
const ANCHOR: &str = "kube-scheduler ~100-300";
const TIMEOUT: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    bench_main::run(env!("CARGO_CRATE_NAME"), Some("warn"), run)
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::bind(ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        datastore: format!("sqlite://{}", dir.path().join("state.db").display()),
        data_dir: dir.path().to_path_buf(),
        store: StoreOptions::default(),
        controllers: false,
        node_health: Default::default(),
        pod_network: Default::default(),
    })
    .await?;
    let url = format!("http://{}", server.addr);
    let stop_server = CancellationToken::new();
    let server_task = tokio::spawn({
        let stop = stop_server.clone();
        async move { server.serve(async move { stop.cancelled().await }).await }
    });
    let client = ApiClient::new(&url, None)?;

    eprintln!("creating {NODES} nodes and {PODS} pods ...");
    let created = Instant::now();
    futures::stream::iter(0..NODES)
        .map(|i| {
            let client = client.clone();
            async move { create_node(&client, i).await }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "bench"}}))?;
    client.create(None, &ns).await?;
    futures::stream::iter(0..PODS)
        .map(|i| {
            let client = client.clone();
            async move { create_pod(&client, i).await }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    eprintln!(
        "created in {:.1} s; starting the scheduler",
        created.elapsed().as_secs_f64()
    );

    // Watch for bindings from the current version on.
    let mut watcher = client.watcher::<Pod>(Some("bench"), ListParams::default());
    let Ok(Change::Restarted(_)) = watcher.next().await else {
        anyhow::bail!("the first watch result was not a list");
    };
    let stop_scheduler = CancellationToken::new();
    let started = Instant::now();
    let scheduler = controllers::spawn(ControllerConfig::new(url), stop_scheduler.clone())?;
    let mut bound: HashSet<String> = HashSet::new();
    let mut per_node: std::collections::HashMap<String, usize> = Default::default();
    let mut first_bound = None;
    let deadline = started + TIMEOUT;
    while bound.len() < PODS {
        let next = tokio::time::timeout_at(deadline.into(), watcher.next())
            .await
            .context("pods were still unbound after the timeout")?;
        if let Ok(Change::Applied(pod)) = next {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            if let (Some(name), Some(node)) = (pod.metadata.name, node)
                && bound.insert(name)
            {
                first_bound.get_or_insert_with(Instant::now);
                *per_node.entry(node).or_default() += 1;
            }
        }
    }
    let total = started.elapsed();
    let steady = first_bound.map_or(total, |t| t.elapsed());
    stop_scheduler.cancel();
    let _ = scheduler.await;
    stop_server.cancel();
    let _ = server_task.await;

    let rate = PODS as f64 / total.as_secs_f64();
    let steady_rate = PODS as f64 / steady.as_secs_f64();
    let (min, max) = (
        per_node.values().min().copied().unwrap_or(0),
        per_node.values().max().copied().unwrap_or(0),
    );
    println!(
        "scheduler throughput, 1,000 nodes: {rate:.0} pods/s (target >= 2,000; {ANCHOR}) [{}]",
        if rate >= TARGET { "met" } else { "MISSED" }
    );
    println!(
        "  {PODS} pods bound in {:.2} s from the scheduler's start (leader election, lists, \
         then decisions and bindings); {steady_rate:.0} pods/s from the first binding to the last",
        total.as_secs_f64()
    );
    println!(
        "  spread: {} nodes used, {min}-{max} pods per node",
        per_node.len()
    );
    Ok(())
}

async fn create_node(client: &ApiClient, i: usize) -> anyhow::Result<()> {
    let name = format!("node-{i:04}");
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }))?;
    client.create(None, &node).await?;
    let status = json!({"status": {
        "allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"},
        "capacity": {"cpu": "32", "memory": "64Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
    }});
    client
        .patch_status::<Node>(None, &name, &wasmpod_api::client::Patch::Merge(status))
        .await?;
    Ok(())
}

async fn create_pod(client: &ApiClient, i: usize) -> anyhow::Result<()> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("pod-{i}"), "namespace": "bench",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                "uid": format!("rs-{}", i % 10), "controller": true}]},
        "spec": {"containers": [{"name": "app", "image": "file:///app.wasm",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    }))?;
    client.create(Some("bench"), &pod).await?;
    Ok(())
}
