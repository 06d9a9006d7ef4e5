//! The DaemonSet controller's decisions, without a server.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use wasmpod_api::selector::LabelSelector;

use super::plan::{self, HASH_LABEL, Plan};

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("valid time")
}

fn merged(mut base: Value, extra: Value) -> Value {
    wasmpod_api::patch::merge_patch(&mut base, &extra);
    base
}

fn daemon_set(extra: Value) -> DaemonSet {
    let base = json!({
        "metadata": {"name": "agent", "namespace": "ns", "uid": "ds-uid", "generation": 2},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "file:///a.wasm"}]}
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
        }
    });
    serde_json::from_value(merged(base, extra)).expect("a DaemonSet")
}

fn node(name: &str, extra: Value) -> Arc<Node> {
    let base =
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {}});
    Arc::new(serde_json::from_value(merged(base, extra)).expect("a node"))
}

/// A pod of the DaemonSet on `node` from the template with `hash`, Ready
/// when `ready`.
fn pod(name: &str, node: &str, hash: &str, ready: bool) -> Arc<Pod> {
    let status = if ready { "True" } else { "False" };
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "labels": {"app": "agent", HASH_LABEL: hash},
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                    "uid": "ds-uid", "controller": true}]
            },
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "file:///a.wasm"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]}
        }))
        .expect("a pod"),
    )
}

fn with(pod: &Pod, extra: Value) -> Arc<Pod> {
    let base = serde_json::to_value(pod).expect("serializable");
    Arc::new(serde_json::from_value(merged(base, extra)).expect("a pod"))
}

fn run(ds: &DaemonSet, nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> Plan {
    let selector =
        LabelSelector::from_api(&ds.spec.as_ref().expect("spec").selector).expect("valid selector");
    plan::plan(ds, &selector, "h1", nodes, pods, now())
}

fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
    pods.iter()
        .filter_map(|p| p.metadata.name.as_deref())
        .collect()
}

#[test]
fn every_eligible_node_without_a_pod_gets_one() {
    let ds = daemon_set(json!({}));
    let nodes = [
        node("a", json!({})),
        node("b", json!({})),
        node("c", json!({})),
    ];
    let plan = run(&ds, &nodes, &[pod("p-a", "a", "h1", true)]);
    assert_eq!(plan.create, vec!["b".to_string(), "c".to_string()]);
    assert!(plan.delete.is_empty());
    let s = plan.status;
    assert_eq!(
        (
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_ready
        ),
        (3, 1, 1)
    );
    assert_eq!(s.number_available, Some(1));
    assert_eq!(s.updated_number_scheduled, Some(1));
    assert_eq!(s.observed_generation, Some(2));
}

#[test]
fn node_selector_and_affinity_choose_the_nodes() {
    let ds = daemon_set(json!({"spec": {"template": {"spec": {
        "nodeSelector": {"disk": "ssd"},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]
        }}}
    }}}}));
    let nodes = [
        node(
            "fits",
            json!({"metadata": {"labels": {"disk": "ssd", "zone": "z1"}}}),
        ),
        node(
            "wrong-zone",
            json!({"metadata": {"labels": {"disk": "ssd", "zone": "z2"}}}),
        ),
        node("no-disk", json!({"metadata": {"labels": {"zone": "z1"}}})),
    ];
    // A pod left on a node that no longer matches is deleted.
    let plan = run(&ds, &nodes, &[pod("stale", "no-disk", "h1", true)]);
    assert_eq!(plan.create, vec!["fits".to_string()]);
    assert_eq!(names(&plan.delete), vec!["stale"]);
    assert_eq!(plan.status.desired_number_scheduled, 1);
    assert_eq!(plan.status.number_misscheduled, 1);
}

#[test]
fn taints_need_tolerations_but_node_conditions_are_tolerated() {
    let ds = daemon_set(json!({}));
    let taint = |key: &str, effect: &str| json!({"spec": {"taints": [{"key": key, "value": "x", "effect": effect}]}});
    let nodes = [
        node("dedicated", taint("dedicated", "NoSchedule")),
        node("evicting", taint("dedicated", "NoExecute")),
        node("preferring", taint("dedicated", "PreferNoSchedule")),
        node(
            "not-ready",
            taint("node.kubernetes.io/not-ready", "NoExecute"),
        ),
        node(
            "cordoned",
            taint("node.kubernetes.io/unschedulable", "NoSchedule"),
        ),
        node(
            "pressure",
            taint("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ),
    ];
    // A pod already on a NoSchedule-tainted node stays; NoExecute evicts.
    let pods = [
        pod("kept", "dedicated", "h1", true),
        pod("evicted", "evicting", "h1", true),
    ];
    let mut plan = run(&ds, &nodes, &pods);
    plan.create.sort_unstable();
    assert_eq!(
        plan.create,
        ["cordoned", "not-ready", "preferring", "pressure"].map(String::from)
    );
    assert_eq!(names(&plan.delete), vec!["evicted"]);

    let tolerant = daemon_set(json!({"spec": {"template": {"spec": {
        "tolerations": [{"key": "dedicated", "operator": "Exists"}]
    }}}}));
    let plan = run(&tolerant, &nodes, &[]);
    assert_eq!(plan.create.len(), nodes.len());
}

#[test]
fn failed_surplus_and_orphaned_pods_are_deleted() {
    let ds = daemon_set(json!({}));
    let nodes = [node("a", json!({})), node("b", json!({}))];
    let failed = with(
        &pod("failed", "a", "h1", false),
        json!({"status": {"phase": "Failed"}}),
    );
    let mut newer = (*pod("newer", "b", "h1", true)).clone();
    newer.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let pods = [
        failed,
        pod("older", "b", "h1", true),
        Arc::new(newer),
        pod("gone-node", "c", "h1", true),
    ];
    let plan = run(&ds, &nodes, &pods);
    // The node with a failed pod gets a new one once it is gone.
    assert!(plan.create.is_empty());
    let mut deleted = names(&plan.delete);
    deleted.sort_unstable();
    assert_eq!(deleted, vec!["failed", "gone-node", "newer"]);

    let terminating = with(
        &pod("failed", "a", "h1", false),
        json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Failed"}}),
    );
    let plan = run(&ds, &nodes[..1], &[terminating]);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
}

#[test]
fn orphans_are_adopted_and_unmatched_pods_released() {
    let ds = daemon_set(json!({}));
    let nodes = [node("a", json!({})), node("b", json!({}))];
    let orphan = with(
        &pod("orphan", "a", "h1", true),
        json!({"metadata": {"ownerReferences": null}}),
    );
    let relabelled = with(
        &pod("relabelled", "b", "h1", true),
        json!({"metadata": {"labels": {"app": "other"}}}),
    );
    let plan = run(&ds, &nodes, &[orphan, relabelled]);
    assert_eq!(names(&plan.adopt), vec!["orphan"]);
    assert_eq!(names(&plan.release), vec!["relabelled"]);
    assert_eq!(plan.create, vec!["b".to_string()]);
}

#[test]
fn rolling_update_replaces_at_most_max_unavailable_nodes_at_once() {
    let ds = daemon_set(json!({}));
    let nodes = [
        node("a", json!({})),
        node("b", json!({})),
        node("c", json!({})),
    ];
    let old = [
        pod("old-a", "a", "h0", true),
        pod("old-b", "b", "h0", true),
        pod("old-c", "c", "h0", true),
    ];
    let plan = run(&ds, &nodes, &old);
    assert_eq!(names(&plan.delete), vec!["old-a"]);
    assert_eq!(plan.status.updated_number_scheduled, Some(0));

    // While the new pod on a is not ready, nothing else goes.
    let rolling = [
        pod("new-a", "a", "h1", false),
        old[1].clone(),
        old[2].clone(),
    ];
    assert!(run(&ds, &nodes, &rolling).delete.is_empty());

    // Once it is, the next node is replaced; an old pod that is not
    // available is replaced regardless of the budget.
    let rolling = [
        pod("new-a", "a", "h1", true),
        old[1].clone(),
        pod("old-c", "c", "h0", false),
    ];
    let step = run(&ds, &nodes, &rolling);
    let mut deleted = names(&step.delete);
    deleted.sort_unstable();
    assert_eq!(deleted, vec!["old-b", "old-c"]);

    let percent = daemon_set(
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "50%"}}}}),
    );
    assert_eq!(plan::max_unavailable(&percent, 3), 2);
    assert_eq!(
        names(&run(&percent, &nodes, &old).delete),
        vec!["old-a", "old-b"]
    );
}

#[test]
fn on_delete_keeps_old_pods_until_they_are_deleted() {
    let ds = daemon_set(
        json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}}),
    );
    let nodes = [node("a", json!({})), node("b", json!({}))];
    let plan = run(&ds, &nodes, &[pod("old-a", "a", "h0", true)]);
    assert!(plan.delete.is_empty());
    assert_eq!(plan.create, vec!["b".to_string()]);
    assert_eq!(plan.status.updated_number_scheduled, Some(0));
}

#[test]
fn daemon_pods_are_pinned_to_their_node_and_tolerate_node_conditions() {
    let ds = daemon_set(json!({"spec": {"template": {"spec": {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]
        }}}
    }}}}));
    let spec = ds.spec.as_ref().expect("spec");
    let t = plan::template_for_node(&spec.template, "h1", "node-1");
    let labels = t
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .expect("labels");
    assert_eq!(labels.get(HASH_LABEL).map(String::as_str), Some("h1"));
    assert_eq!(labels.get("app").map(String::as_str), Some("agent"));
    let pod = Pod {
        spec: t.spec.clone(),
        ..Pod::default()
    };
    assert_eq!(plan::target_node(&pod), Some("node-1"));
    let tolerations = t
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .expect("tolerations");
    assert_eq!(tolerations.len(), plan::DEFAULT_TOLERATIONS.len());
    assert!(
        tolerations
            .iter()
            .all(|t| t.operator.as_deref() == Some("Exists") && t.toleration_seconds.is_none())
    );
    // The scheduler's node affinity filter binds it to that node only.
    let info = |name: &str| crate::scheduler::cluster::NodeInfo {
        name: name.into(),
        ..Default::default()
    };
    let pod_spec = t.spec.as_ref().expect("spec");
    assert!(crate::scheduler::filters::matches_node_selector(
        pod_spec,
        &info("node-1")
    ));
    assert!(!crate::scheduler::filters::matches_node_selector(
        pod_spec,
        &info("node-2")
    ));
}

#[test]
fn a_deleted_daemon_set_creates_and_deletes_nothing() {
    let ds = daemon_set(json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}));
    let plan = run(&ds, &[node("a", json!({}))], &[pod("p", "b", "h0", true)]);
    assert!(plan.create.is_empty() && plan.delete.is_empty() && plan.adopt.is_empty());
}
