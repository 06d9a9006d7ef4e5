//! Builders of nodes and pods for the scheduler's tests.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use super::cluster::{ClusterState, PodInfo};

/// A Ready node with 4 CPUs, 8 GiB and 110 pods, merged with `extra`.
pub fn node(name: &str, extra: Value) -> Node {
    let mut base = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    });
    wasmpod_api::patch::merge_patch(&mut base, &extra);
    serde_json::from_value(base).expect("a node")
}

/// A pod in `ns` with one container, merged with `extra`.
pub fn pod(name: &str, extra: Value) -> Pod {
    let mut base = json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "file:///a.wasm"}]}
    });
    wasmpod_api::patch::merge_patch(&mut base, &extra);
    serde_json::from_value(base).expect("a pod")
}

/// A pod requesting `cpu` and `memory`.
pub fn pod_requesting(name: &str, cpu: &str, memory: &str) -> Pod {
    pod(
        name,
        json!({"spec": {"containers": [{"name": "c", "image": "file:///a.wasm",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}),
    )
}

pub fn info(pod: &Pod) -> Arc<PodInfo> {
    Arc::new(PodInfo::new(pod).expect("named"))
}

pub fn state(nodes: &[Node]) -> ClusterState {
    let mut state = ClusterState::default();
    for n in nodes {
        state.set_node(n);
    }
    state
}
