//! The scheduler inside `wasmpod server`, end to end: fake Node objects
//! (created through the API with allocatable resources and a Ready
//! condition; nothing runs on them) and pods, bound per the filters, with
//! FailedScheduling events and conditions for pods that fit nowhere. Each
//! test has a cluster of its own, so the nodes are its own.

mod common;

use std::time::Duration;

use common::{Cluster, ClusterOptions, eventually};
use serde_json::{Value, json};

const BIND_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates a Ready node with `allocatable`, `labels` and `taints`.
fn add_node(c: &Cluster, name: &str, allocatable: Value, labels: Value, taints: Value) {
    c.post(
        "/api/v1/nodes",
        &json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
        }),
    )
    .expect(201);
    c.patch(
        &format!("/api/v1/nodes/{name}/status"),
        "application/merge-patch+json",
        &json!({"status": {
            "allocatable": allocatable,
            "capacity": allocatable,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        }}),
    )
    .expect(200);
}

fn add_pod(c: &Cluster, ns: &str, name: &str, spec_extra: Value, labels: Value) {
    let mut spec = json!({"containers": [{"name": "app", "image": "file:///app.wasm"}]});
    wasmpod_merge(&mut spec, spec_extra);
    c.post(
        &format!("/api/v1/namespaces/{ns}/pods"),
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }),
    )
    .expect(201);
}

/// Shallow merge of `extra`'s keys into `spec`.
fn wasmpod_merge(spec: &mut Value, extra: Value) {
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
}

fn requests(cpu: &str, memory: &str) -> Value {
    json!({"containers": [{"name": "app", "image": "file:///app.wasm",
        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]})
}

fn node_of(c: &Cluster, ns: &str, pod: &str) -> Option<String> {
    let pod = c.get(&format!("/api/v1/namespaces/{ns}/pods/{pod}"));
    pod.expect(200)["spec"]["nodeName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

#[track_caller]
fn wait_bound(c: &Cluster, ns: &str, pod: &str) -> String {
    eventually(BIND_TIMEOUT, || node_of(c, ns, pod)).unwrap_or_else(|| {
        panic!(
            "pod {pod} was not bound; server log:\n{}",
            c.server_log_tail(30)
        )
    })
}

fn cluster(ns: &str) -> Cluster {
    let c = Cluster::start_with_options(ClusterOptions::with_silent_nodes());
    c.create_namespace(ns);
    c
}

#[test]
fn pods_are_bound_by_resources_node_selector_taints_and_anti_affinity() {
    let ns = "sched";
    let c = cluster(ns);
    add_node(
        &c,
        "small",
        json!({"cpu": "1", "memory": "1Gi", "pods": "110"}),
        json!({"disk": "hdd"}),
        json!([]),
    );
    add_node(
        &c,
        "big",
        json!({"cpu": "8", "memory": "16Gi", "pods": "110"}),
        json!({"disk": "ssd"}),
        json!([]),
    );
    add_node(
        &c,
        "gpu",
        json!({"cpu": "8", "memory": "16Gi", "pods": "110"}),
        json!({}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    );

    add_pod(
        &c,
        ns,
        "wants-ssd",
        json!({"nodeSelector": {"disk": "ssd"}}),
        json!({}),
    );
    add_pod(&c, ns, "wants-4-cpus", requests("4", "1Gi"), json!({}));
    add_pod(
        &c,
        ns,
        "tolerates-gpu",
        json!({
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu"]}]}]
            }}}
        }),
        json!({}),
    );
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "db"}},
        "topologyKey": "kubernetes.io/hostname"
    }]}}});
    add_pod(&c, ns, "db-0", anti.clone(), json!({"app": "db"}));
    add_pod(&c, ns, "db-1", anti.clone(), json!({"app": "db"}));

    assert_eq!(wait_bound(&c, ns, "wants-ssd"), "big");
    assert_eq!(wait_bound(&c, ns, "wants-4-cpus"), "big");
    assert_eq!(wait_bound(&c, ns, "tolerates-gpu"), "gpu");
    let db0 = wait_bound(&c, ns, "db-0");
    let db1 = wait_bound(&c, ns, "db-1");
    assert_ne!(db0, db1, "anti-affinity keeps the db pods apart");
    assert!(db0 != "gpu" && db1 != "gpu", "neither tolerates the taint");

    // A third db pod has no node left: both untainted nodes hold one.
    add_pod(&c, ns, "db-2", anti, json!({"app": "db"}));
    let message = "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't satisfy existing pods anti-affinity rules.";
    let condition = eventually(BIND_TIMEOUT, || {
        let pod = c.get(&format!("/api/v1/namespaces/{ns}/pods/db-2"));
        let conditions = pod.expect(200)["status"]["conditions"].clone();
        conditions
            .as_array()?
            .iter()
            .find(|c| c["type"] == "PodScheduled")
            .cloned()
    })
    .expect("db-2 gets a PodScheduled condition");
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "Unschedulable");
    assert_eq!(condition["message"], message, "{condition}");

    // The Scheduled events name the node.
    let events = eventually(BIND_TIMEOUT, || {
        let out = c.kubectl_ok(&["get", "events", "-n", ns]);
        (out.contains("Successfully assigned sched/wants-ssd to big")
            && out.contains("FailedScheduling"))
        .then_some(out)
    });
    assert!(
        events.is_some(),
        "{}",
        c.kubectl_ok(&["get", "events", "-n", ns])
    );
}

#[test]
fn a_pending_pod_is_explained_and_scheduled_when_a_node_is_added() {
    let ns = "pending";
    let c = cluster(ns);
    add_node(
        &c,
        "a",
        json!({"cpu": "2", "memory": "1Gi", "pods": "110"}),
        json!({}),
        json!([]),
    );
    add_node(
        &c,
        "b",
        json!({"cpu": "2", "memory": "1Gi", "pods": "110"}),
        json!({}),
        json!([]),
    );
    add_node(
        &c,
        "tainted",
        json!({"cpu": "2", "memory": "64Gi", "pods": "110"}),
        json!({}),
        json!([{"key": "k", "value": "v", "effect": "NoSchedule"}]),
    );
    add_pod(&c, ns, "huge", requests("1", "8Gi"), json!({}));
    add_pod(
        &c,
        ns,
        "elsewhere",
        json!({"schedulerName": "other-scheduler"}),
        json!({}),
    );
    let message =
        "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient memory.";
    let described = eventually(BIND_TIMEOUT, || {
        let out = c.kubectl_ok(&["describe", "pod", "huge", "-n", ns]);
        out.contains(message).then_some(out)
    });
    assert!(
        described.is_some(),
        "describe shows the FailedScheduling event:\n{}",
        c.kubectl_ok(&["describe", "pod", "huge", "-n", ns])
    );
    let events = c.kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        "reason=FailedScheduling",
    ]);
    assert!(
        events.contains("pod/huge") && events.contains(message),
        "{events}"
    );
    assert_eq!(node_of(&c, ns, "huge"), None);

    add_node(
        &c,
        "roomy",
        json!({"cpu": "4", "memory": "16Gi", "pods": "110"}),
        json!({}),
        json!([]),
    );
    let started = std::time::Instant::now();
    assert_eq!(wait_bound(&c, ns, "huge"), "roomy");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a node added retries pending pods at once, not after their backoff"
    );
    // Another scheduler's pod is left alone.
    assert_eq!(node_of(&c, ns, "elsewhere"), None);
    let events = c.kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        "involvedObject.name=elsewhere",
    ]);
    assert!(!events.contains("elsewhere"), "{events}");
}
