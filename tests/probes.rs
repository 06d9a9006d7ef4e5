//! Container probes on a real node, over the pod's virtual network:
//! readiness drives READY and the Ready condition, failed probes are
//! `Unhealthy` events, a failed liveness probe restarts the container.

mod common;

use std::time::Duration;

use common::node::{container_status, example_image, shared_node};
use common::{Cluster, eventually, namespace};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(60);

fn setup(prefix: &str) -> (&'static Cluster, String, String) {
    let node = shared_node();
    let (cluster, ns) = namespace(prefix);
    (cluster, ns, node.name.clone())
}

/// A pod bound to `node` running `image` with the given container fields.
fn pod(ns: &str, name: &str, node: &str, container: Value) -> String {
    let mut container = container;
    container["name"] = json!("app");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
        },
    })
    .to_string()
}

/// A Service selecting the pod `name` (labelled `app: name`) on port 7000.
fn service(ns: &str, name: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "ports": [{"port": 7000}]},
    })
    .to_string()
}

/// The Endpoints of the Service `name` once it lists the pod under
/// `field` (`addresses` or `notReadyAddresses`).
fn endpoints_with(c: &Cluster, ns: &str, name: &str, field: &str) -> Value {
    eventually(Duration::from_secs(20), || {
        let e = c.get(&format!("/api/v1/namespaces/{ns}/endpoints/{name}"));
        let listed = e.body["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s[field].as_array().is_some_and(|a| !a.is_empty()));
        (e.status == 200 && listed).then_some(e.body)
    })
    .unwrap_or_else(|| panic!("Endpoints {ns}/{name} without {field}"))
}

fn condition(p: &Value, kind: &str) -> String {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn ready_column(c: &Cluster, ns: &str, name: &str) -> String {
    let row = c.kubectl_ok(&["get", "pod", name, "-n", ns, "--no-headers"]);
    row.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// The messages of the pod's events with `reason`.
fn events(c: &Cluster, ns: &str, pod: &str, reason: &str) -> Vec<String> {
    let list = c.get(&format!("/api/v1/namespaces/{ns}/events"));
    list.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == pod && e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_readiness_probe_on_a_closed_port_keeps_the_pod_unready() {
    let (c, ns, node) = setup("probe-closed");
    c.apply(&pod(
        &ns,
        "closed",
        &node,
        json!({
            "image": example_image("wasip2", "echo-server"),
            "readinessProbe": {"tcpSocket": {"port": 7999}, "periodSeconds": 1},
        }),
    ));
    c.wait_pod(&ns, "closed", START, "phase Running", |p| {
        p["status"]["phase"] == "Running"
    });
    let messages = eventually(Duration::from_secs(20), || {
        let found = events(c, &ns, "closed", "Unhealthy");
        (found.len() >= 2).then_some(found)
    })
    .expect("Unhealthy events");
    assert!(
        messages
            .iter()
            .all(|m| m.starts_with("Readiness probe failed: dial tcp ")
                && m.ends_with(":7999: connect: connection refused")),
        "{messages:?}"
    );
    let p = c.get(&format!("/api/v1/namespaces/{ns}/pods/closed")).body;
    assert_eq!(p["status"]["phase"], "Running");
    assert_eq!(container_status(&p, "app")["ready"], false);
    assert_eq!(container_status(&p, "app")["started"], true);
    assert_eq!(condition(&p, "Ready"), "False");
    assert_eq!(condition(&p, "ContainersReady"), "False");
    assert_eq!(ready_column(c, &ns, "closed"), "0/1");
    c.apply(&service(&ns, "closed"));
    let e = endpoints_with(c, &ns, "closed", "notReadyAddresses");
    assert!(e["subsets"][0]["addresses"].is_null(), "{e}");
}

#[test]
fn a_tcp_readiness_probe_on_the_echo_servers_port_makes_it_ready() {
    let (c, ns, node) = setup("probe-echo");
    c.apply(&pod(
        &ns,
        "echo",
        &node,
        json!({
            "image": example_image("wasip2", "echo-server"),
            "ports": [{"name": "echo", "containerPort": 7000}],
            "startupProbe": {"tcpSocket": {"port": "echo"}, "periodSeconds": 1, "failureThreshold": 30},
            "readinessProbe": {"tcpSocket": {"port": "echo"}, "periodSeconds": 1},
            "livenessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1},
        }),
    ));
    let p = c.wait_pod(&ns, "echo", START, "Ready", |p| {
        condition(p, "Ready") == "True"
    });
    assert_eq!(container_status(&p, "app")["ready"], true);
    assert_eq!(ready_column(c, &ns, "echo"), "1/1");
    c.apply(&service(&ns, "echo"));
    let e = endpoints_with(c, &ns, "echo", "addresses");
    assert_eq!(
        e["subsets"][0]["addresses"][0]["ip"], p["status"]["podIP"],
        "{e}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let p = c.get(&format!("/api/v1/namespaces/{ns}/pods/echo")).body;
    assert_eq!(
        container_status(&p, "app")["restartCount"],
        0,
        "a passing liveness probe restarts nothing"
    );
}

#[test]
fn an_http_readiness_probe_by_port_name_makes_the_http_component_ready() {
    let (c, ns, node) = setup("probe-http");
    c.apply(&pod(
        &ns,
        "web",
        &node,
        json!({
            "image": example_image("wasip2", "http-echo"),
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {
                "httpGet": {"port": "http", "path": "/healthz",
                    "httpHeaders": [{"name": "X-Probe", "value": "readiness"}]},
                "periodSeconds": 1,
            },
        }),
    ));
    let p = c.wait_pod(&ns, "web", START, "Ready", |p| {
        condition(p, "Ready") == "True"
    });
    assert_eq!(container_status(&p, "app")["ready"], true);
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let (c, ns, node) = setup("probe-liveness");
    c.apply(&pod(
        &ns,
        "unlive",
        &node,
        json!({
            "image": example_image("wasip2", "echo-server"),
            "livenessProbe": {"tcpSocket": {"port": 7001}, "periodSeconds": 1,
                "failureThreshold": 2, "terminationGracePeriodSeconds": 1},
        }),
    ));
    let p = c.wait_pod(&ns, "unlive", START, "two restarts", |p| {
        container_status(p, "app")["restartCount"]
            .as_i64()
            .is_some_and(|n| n >= 2)
    });
    let last = &container_status(&p, "app")["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{last}");
    assert_eq!(
        last["message"], "Container app failed liveness probe",
        "{last}"
    );
    let killing = events(c, &ns, "unlive", "Killing");
    assert!(
        killing
            .iter()
            .any(|m| m == "Container app failed liveness probe, will be restarted"),
        "{killing:?}"
    );
    let unhealthy = events(c, &ns, "unlive", "Unhealthy");
    assert!(
        unhealthy
            .iter()
            .any(|m| m.starts_with("Liveness probe failed: ")),
        "{unhealthy:?}"
    );
}

#[test]
fn exec_probes_fail_with_a_clear_message() {
    let (c, ns, node) = setup("probe-exec");
    c.apply(&pod(
        &ns,
        "exec",
        &node,
        json!({
            "image": example_image("wasip2", "echo-server"),
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
        }),
    ));
    let messages = eventually(Duration::from_secs(30), || {
        let found = events(c, &ns, "exec", "Unhealthy");
        (!found.is_empty()).then_some(found)
    })
    .expect("an Unhealthy event");
    assert_eq!(
        messages[0],
        "Readiness probe failed: exec probes are not supported by wasm containers"
    );
    assert_eq!(ready_column(c, &ns, "exec"), "0/1");
}
