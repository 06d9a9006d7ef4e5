//! Pod IPs and networks through the pod manager, on the fake runtime and
//! the fake API with a paused clock.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use wasmpod_api::k8s_openapi::api::core::v1::{Namespace, Pod};

use super::PodNetworking;
use crate::agent::client::Change;
use crate::agent::clock::Clock;
use crate::agent::fake_runtime::{Behavior, FakeRuntime};
use crate::agent::pods::fake_api::FakeApi;
use crate::agent::pods::{PodManager, PodWorkerConfig};
use crate::network::{Fabric, FabricConfig, NetError};

const NODE: &str = "n1";

struct Node {
    runtime: Arc<FakeRuntime>,
    api: FakeApi,
    fabric: Fabric,
    manager: PodManager<FakeRuntime, FakeApi>,
    _dir: tempfile::TempDir,
}

fn node_with(runtime: FakeRuntime, networking: PodNetworking) -> Node {
    let dir = tempfile::tempdir().expect("a temp dir");
    let runtime = Arc::new(runtime);
    let api = FakeApi::default();
    let mut config = PodWorkerConfig::new(NODE, dir.path().to_path_buf());
    config.clock = Clock::anchored_at("2025-01-01T00:00:00Z".parse().expect("a timestamp"));
    let fabric = networking.fabric().clone();
    config.network = Some(networking);
    let manager = PodManager::new(Arc::clone(&runtime), api.clone(), config);
    Node {
        runtime,
        api,
        fabric,
        manager,
        _dir: dir,
    }
}

fn node(runtime: FakeRuntime) -> Node {
    let fabric = Fabric::new(FabricConfig {
        allow_egress: true,
        node_addresses: Vec::new(),
    });
    let cidr = "10.42.3.0/24".parse().expect("a CIDR");
    node_with(runtime, PodNetworking::with_cidr(fabric, true, cidr))
}

fn pod(name: &str, namespace: &str, spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    spec["nodeName"] = json!(NODE);
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}")},
        "spec": spec,
        "status": {"phase": "Pending"},
    }))
    .expect("a pod")
}

fn runs(name: &str) -> Pod {
    pod(
        name,
        "default",
        json!({"containers": [{"name": "c", "image": "app.wasm"}]}),
    )
}

async fn until(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() <= limit,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().expect("an IP")
}

#[tokio::test(start_paused = true)]
async fn pods_get_distinct_ips_of_the_node_cidr_and_report_them() {
    let mut node = node(FakeRuntime::new(Behavior::RunUntilKilled));
    node.manager.handle(Change::Applied(runs("a")));
    until(Duration::from_secs(1), || node.runtime.starts().len() == 1).await;
    node.manager.handle(Change::Applied(runs("b")));
    until(Duration::from_secs(1), || node.runtime.starts().len() == 2).await;
    let ips: Vec<Ipv4Addr> = node
        .runtime
        .starts()
        .iter()
        .map(|s| s.network.as_ref().expect("a pod network").ip())
        .collect();
    assert_eq!(ips, vec![ip("10.42.3.2"), ip("10.42.3.3")]);
    assert!(ips.iter().all(|i| node.fabric.has_pod(*i)));
    until(Duration::from_secs(1), || {
        node.api.statuses().iter().any(|s| {
            s.pod_ip.as_deref() == Some("10.42.3.3")
                && s.pod_ips
                    .as_ref()
                    .is_some_and(|v| v.len() == 1 && v[0].ip == "10.42.3.3")
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_finished_pod_keeps_its_ip_in_status_and_leaves_the_network() {
    let mut node = node(FakeRuntime::unrecorded(Behavior::Exit {
        after: Duration::from_secs(1),
        code: 0,
    }));
    let job = pod(
        "job",
        "default",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "job.wasm"}]}),
    );
    node.manager.handle(Change::Applied(job));
    until(Duration::from_secs(1), || {
        node.fabric.has_pod(ip("10.42.3.2"))
    })
    .await;
    until(Duration::from_secs(3), || {
        node.api.last_status().and_then(|s| s.phase).as_deref() == Some("Succeeded")
    })
    .await;
    let last = node.api.last_status().expect("a status");
    assert_eq!(last.pod_ip.as_deref(), Some("10.42.3.2"));
    until(Duration::from_secs(1), || {
        !node.fabric.has_pod(ip("10.42.3.2"))
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_adopted_pod_keeps_the_ip_it_reported() {
    let mut node = node(FakeRuntime::new(Behavior::RunUntilKilled));
    let mut adopted = runs("adopted");
    adopted.status = Some(
        serde_json::from_value(json!({
            "phase": "Running", "podIP": "10.42.3.77", "podIPs": [{"ip": "10.42.3.77"}],
        }))
        .expect("a status"),
    );
    node.manager.handle(Change::Applied(adopted));
    until(Duration::from_secs(1), || node.runtime.starts().len() == 1).await;
    let started = node.runtime.starts();
    assert_eq!(
        started[0].network.as_ref().map(|n| n.ip()),
        Some(ip("10.42.3.77"))
    );
}

#[tokio::test(start_paused = true)]
async fn pods_wait_for_the_node_cidr() {
    let fabric = Fabric::new(FabricConfig::default());
    let (networking, sender) = PodNetworking::new(fabric, true);
    let mut node = node_with(FakeRuntime::new(Behavior::RunUntilKilled), networking);
    node.manager.handle(Change::Applied(runs("early")));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(node.runtime.starts().is_empty());
    sender.send("10.42.9.0/24".parse().expect("a CIDR"));
    until(Duration::from_secs(1), || node.runtime.starts().len() == 1).await;
    assert_eq!(
        node.runtime.starts()[0].network.as_ref().map(|n| n.ip()),
        Some(ip("10.42.9.2"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_namespace_labelled_egress_deny_keeps_its_pods_inside() {
    let mut node = node(FakeRuntime::new(Behavior::RunUntilKilled));
    let closed: Namespace = serde_json::from_value(json!({
        "metadata": {"name": "closed", "labels": {"network.wasmpod.io/egress": "deny"}},
    }))
    .expect("a namespace");
    node.api.add_namespace(closed);
    node.manager.handle(Change::Applied(pod(
        "inside",
        "closed",
        json!({"containers": [{"name": "c", "image": "app.wasm"}]}),
    )));
    until(Duration::from_secs(1), || node.runtime.starts().len() == 1).await;
    let network = node.runtime.starts()[0].network.clone().expect("a network");
    let outside: SocketAddr = "192.0.2.1:80".parse().expect("an address");
    assert!(matches!(
        network.connect(outside).await,
        Err(NetError::Denied(_))
    ));
}
