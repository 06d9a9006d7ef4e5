use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::scheduler::testing::{info, node, pod, pod_requesting, state};

fn place(
    spec_pod: &k8s_openapi::api::core::v1::Pod,
    s: &mut ClusterState,
) -> Result<String, FitError> {
    let i = info(spec_pod);
    let node = schedule(spec_pod.spec.as_ref().expect("spec"), &i, s)?;
    s.place(i, &node);
    Ok(node)
}

#[test]
fn the_failure_message_counts_reasons_as_kubernetes_does() {
    let mut s = state(&[
        node("a", json!({"status": {"allocatable": {"memory": "1Gi"}}})),
        node("b", json!({"status": {"allocatable": {"memory": "1Gi"}}})),
        node(
            "c",
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
        ),
    ]);
    let err = place(&pod_requesting("p", "100m", "2Gi"), &mut s).expect_err("nothing fits");
    assert_eq!(
        err.to_string(),
        "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient memory."
    );
    let none = place(&pod("p", json!({})), &mut ClusterState::default()).expect_err("no nodes");
    assert_eq!(none.to_string(), "no nodes available to schedule pods");
}

#[test]
fn pods_of_one_owner_spread_and_assumed_pods_count_at_once() {
    let nodes: Vec<_> = (0..5).map(|i| node(&format!("n{i}"), json!({}))).collect();
    let mut s = state(&nodes);
    let owned = |i: usize| {
        pod(
            &format!("p{i}"),
            json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "rs", "uid": "rs-uid", "controller": true}]}}),
        )
    };
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for i in 0..20 {
        *per_node
            .entry(place(&owned(i), &mut s).expect("fits"))
            .or_default() += 1;
    }
    assert_eq!(per_node.len(), 5);
    assert!(per_node.values().all(|n| *n == 4), "{per_node:?}");
}

#[test]
fn the_emptier_node_wins_and_full_nodes_are_skipped() {
    let mut s = state(&[
        node("small", json!({"status": {"allocatable": {"cpu": "1"}}})),
        node("big", json!({})),
    ]);
    assert_eq!(
        place(&pod_requesting("a", "500m", "1Mi"), &mut s).expect("fits"),
        "big"
    );
    // 5 CPUs in all: nine more pods of 500m fit, the eleventh does not.
    for i in 0..9 {
        place(&pod_requesting(&format!("x{i}"), "500m", "1Mi"), &mut s).expect("fits");
    }
    assert_eq!(s.nodes["small"].requested.milli_cpu, 1000);
    let err = place(&pod_requesting("z", "500m", "1Mi"), &mut s).expect_err("full");
    assert_eq!(
        err.to_string(),
        "0/2 nodes are available: 2 Insufficient cpu."
    );
}

#[test]
fn prefer_no_schedule_taints_steer_pods_away() {
    let mut s = state(&[
        node(
            "tainted",
            json!({"spec": {"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}}),
        ),
        node("clean", json!({})),
    ]);
    for i in 0..5 {
        assert_eq!(
            place(&pod(&format!("p{i}"), json!({})), &mut s).expect("fits"),
            "clean"
        );
    }
}

#[test]
fn the_share_of_nodes_considered_follows_kube_schedulers_adaptive_default() {
    assert_eq!(nodes_to_find(0), 0);
    assert_eq!(nodes_to_find(99), 99);
    assert_eq!(nodes_to_find(100), 100, "50% of 100 is raised to 100");
    assert_eq!(nodes_to_find(1_000), 420);
    assert_eq!(nodes_to_find(5_000), 500, "10%");
    assert_eq!(nodes_to_find(100_000), 5_000, "never under 5%");
}

#[test]
fn sampled_decisions_take_turns_over_all_nodes() {
    let nodes: Vec<_> = (0..300)
        .map(|i| node(&format!("n{i:03}"), json!({})))
        .collect();
    let mut s = state(&nodes);
    let mut used = std::collections::HashSet::new();
    for i in 0..300 {
        let p = pod(&format!("p{i}"), json!({}));
        used.insert(place(&p, &mut s).expect("fits"));
    }
    assert!(used.len() > 250, "only {} nodes used", used.len());
}

#[test]
fn a_pod_that_fits_nowhere_is_checked_against_every_node() {
    let nodes: Vec<_> = (0..300)
        .map(|i| {
            node(
                &format!("n{i:03}"),
                json!({"status": {"allocatable": {"cpu": "1"}}}),
            )
        })
        .collect();
    let s = state(&nodes);
    let p = pod_requesting("big", "2", "1Mi");
    let i = info(&p);
    let err = schedule(p.spec.as_ref().expect("spec"), &i, &s).expect_err("fits nowhere");
    assert_eq!(
        err.to_string(),
        "0/300 nodes are available: 300 Insufficient cpu."
    );
}
