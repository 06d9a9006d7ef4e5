//! The Endpoints controller's decisions, without a server.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::{Value, json};

use super::plan;

fn service(extra: Value) -> Service {
    let mut base = json!({
        "metadata": {"name": "web", "namespace": "ns", "labels": {"tier": "front"}},
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "admin", "port": 9000, "targetPort": "admin", "protocol": "TCP"}
            ]
        }
    });
    wasmpod_api::patch::merge_patch(&mut base, &extra);
    serde_json::from_value(base).expect("a service")
}

/// A bound pod labelled app=web with a named port `admin` (9090), an IP
/// and a Ready condition, merged with `extra`.
fn pod(name: &str, ip: &str, ready: bool, extra: Value) -> Arc<Pod> {
    let mut base = json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
            "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "file:///a.wasm",
            "ports": [{"name": "admin", "containerPort": 9090, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    });
    wasmpod_api::patch::merge_patch(&mut base, &extra);
    Arc::new(serde_json::from_value(base).expect("a pod"))
}

fn endpoints(svc: &Service, pods: &[Arc<Pod>]) -> Value {
    let selector = plan::selector(svc).expect("a selector");
    serde_json::to_value(plan::subsets(svc, &selector, pods)).expect("serializable")
}

#[test]
fn ready_and_not_ready_pods_are_listed_with_resolved_ports() {
    let svc = service(json!({}));
    let pods = [
        pod("b", "10.0.0.2", true, json!({})),
        pod("a", "10.0.0.1", true, json!({})),
        pod("c", "10.0.0.3", false, json!({})),
    ];
    let addr = |name: &str, ip: &str| {
        json!({"ip": ip, "nodeName": "n1",
            "targetRef": {"kind": "Pod", "name": name, "namespace": "ns", "uid": format!("uid-{name}")}})
    };
    assert_eq!(
        endpoints(&svc, &pods),
        json!([{
            "addresses": [addr("a", "10.0.0.1"), addr("b", "10.0.0.2")],
            "notReadyAddresses": [addr("c", "10.0.0.3")],
            "ports": [
                {"name": "admin", "port": 9090, "protocol": "TCP"},
                {"name": "http", "port": 8080, "protocol": "TCP"}
            ]
        }])
    );
}

#[test]
fn pods_are_grouped_by_the_ports_they_resolve() {
    let svc = service(json!({}));
    let no_admin = json!({"spec": {"containers": [{"name": "c", "image": "file:///a.wasm"}]}});
    let subsets = endpoints(
        &svc,
        &[
            pod("a", "10.0.0.1", true, json!({})),
            pod("b", "10.0.0.2", true, no_admin),
        ],
    );
    let subsets = subsets.as_array().expect("a list");
    assert_eq!(subsets.len(), 2);
    let ports: Vec<usize> = subsets
        .iter()
        .map(|s| s["ports"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(ports, vec![2, 1]);
    assert_eq!(subsets[1]["addresses"][0]["ip"], "10.0.0.2");
}

#[test]
fn unbound_ipless_terminating_finished_and_unselected_pods_are_left_out() {
    let svc = service(json!({}));
    let pods = [
        pod("no-ip", "", true, json!({"status": {"podIP": null}})),
        pod(
            "unbound",
            "10.0.0.2",
            true,
            json!({"spec": {"nodeName": null}}),
        ),
        pod(
            "leaving",
            "10.0.0.3",
            true,
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
        ),
        pod(
            "done",
            "10.0.0.4",
            false,
            json!({"spec": {"restartPolicy": "Never"}, "status": {"phase": "Succeeded"}}),
        ),
        pod(
            "other",
            "10.0.0.5",
            true,
            json!({"metadata": {"labels": {"app": "other"}}}),
        ),
    ];
    assert_eq!(endpoints(&svc, &pods), json!([]));
    // publishNotReadyAddresses lists every pod with an IP as ready.
    let publish = service(json!({"spec": {"publishNotReadyAddresses": true}}));
    let listed = endpoints(&publish, &[pod("c", "10.0.0.3", false, json!({}))]);
    assert_eq!(listed[0]["addresses"][0]["ip"], "10.0.0.3");
}

#[test]
fn services_without_selector_are_not_managed_and_headless_ones_are_labelled() {
    assert!(plan::selector(&service(json!({"spec": {"selector": null}}))).is_none());
    let mut empty = service(json!({}));
    if let Some(spec) = empty.spec.as_mut() {
        spec.selector = Some(Default::default());
    }
    assert!(plan::selector(&empty).is_none());
    let headless = service(json!({"spec": {"clusterIP": "None", "ports": null}}));
    assert_eq!(
        plan::labels(&headless)
            .get(plan::HEADLESS_LABEL)
            .map(String::as_str),
        Some("")
    );
    assert_eq!(
        plan::labels(&headless).get("tier").map(String::as_str),
        Some("front")
    );
    // Without ports, addresses are listed alone.
    let subsets = endpoints(&headless, &[pod("a", "10.0.0.1", true, json!({}))]);
    assert_eq!(subsets[0]["addresses"][0]["ip"], "10.0.0.1");
    assert!(subsets[0].get("ports").is_none());
}

#[test]
fn the_same_pods_give_the_same_endpoints_whatever_their_order() {
    let svc = service(json!({}));
    let a = pod("a", "10.0.0.1", true, json!({}));
    let b = pod("b", "10.0.0.2", false, json!({}));
    assert_eq!(
        endpoints(&svc, &[a.clone(), b.clone()]),
        endpoints(&svc, &[b, a])
    );
}
