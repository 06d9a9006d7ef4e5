//! Pod IPs and Services on real nodes: every Node gets its own pod CIDR
//! from the node IPAM controller, pods get distinct IPs of their node's
//! CIDR (shown by `kubectl get pods -o wide`), and a client pod reaches a
//! Deployment through its Service's name.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::OnceLock;
use std::time::Duration;

use common::node::{NodeOptions, NodeProcess, example_image};
use common::{Cluster, eventually, namespace};
use ipnet::Ipv4Net;
use serde_json::json;

const START: Duration = Duration::from_secs(60);
const REACH: Duration = Duration::from_secs(30);

/// The two nodes of this file, started once.
fn nodes() -> &'static (NodeProcess, NodeProcess) {
    static NODES: OnceLock<(NodeProcess, NodeProcess)> = OnceLock::new();
    NODES.get_or_init(|| {
        let cluster = Cluster::shared();
        let start = |name: &str, ip: &'static str| {
            cluster.start_node_with(
                name,
                NodeOptions {
                    node_ip: ip,
                    ..NodeOptions::default()
                },
            )
        };
        (start("net-a", "127.0.0.4"), start("net-b", "127.0.0.5"))
    })
}

/// The node's pod CIDR once the controller has assigned it.
fn pod_cidr(c: &Cluster, node: &str) -> String {
    let found = eventually(START, || {
        let n = c.get(&format!("/api/v1/nodes/{node}"));
        let cidr = n.body["spec"]["podCIDR"].as_str()?.to_string();
        assert_eq!(
            n.body["spec"]["podCIDRs"],
            json!([cidr]),
            "podCIDRs lists the podCIDR"
        );
        Some(cidr)
    });
    found.unwrap_or_else(|| panic!("node {node} got no pod CIDR"))
}

/// The node's block, checked to be a /22 (the server's default
/// `--node-cidr-mask-size`) of the default pod network 10.42.0.0/16.
fn block_of(cidr: &str) -> Ipv4Net {
    let block: Ipv4Net = cidr.parse().expect("podCIDR is a CIDR");
    let cluster: Ipv4Net = "10.42.0.0/16".parse().expect("a CIDR");
    assert!(
        block.prefix_len() == 22 && cluster.contains(&block) && block.trunc() == block,
        "a /22 of 10.42.0.0/16, got {cidr}"
    );
    block
}

fn pinned_pod(ns: &str, name: &str, node: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "server",
                "image": example_image("wasip2", "echo-server"),
            }],
        },
    })
    .to_string()
}

fn running_pod_ip(c: &Cluster, ns: &str, name: &str) -> String {
    let p = c.wait_pod(ns, name, START, "Running with a pod IP", |p| {
        p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string()
    });
    assert_eq!(
        p["status"]["podIPs"],
        json!([{"ip": p["status"]["podIP"]}]),
        "podIPs lists the podIP"
    );
    p["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn nodes_get_distinct_pod_cidrs() {
    let (a, b) = nodes();
    let c = Cluster::shared();
    let (cidr_a, cidr_b) = (pod_cidr(c, &a.name), pod_cidr(c, &b.name));
    block_of(&cidr_a);
    block_of(&cidr_b);
    assert_ne!(cidr_a, cidr_b);
}

#[test]
fn pods_get_distinct_ips_of_their_nodes_cidr() {
    let (a, b) = nodes();
    let (c, ns) = namespace("pod-ips");
    let mut seen = HashSet::new();
    for node in [&a.name, &b.name] {
        let block = block_of(&pod_cidr(c, node));
        for i in 0..2 {
            let name = format!("{node}-{i}");
            c.apply(&pinned_pod(&ns, &name, node));
            let ip = running_pod_ip(c, &ns, &name);
            let addr: Ipv4Addr = ip.parse().expect("podIP is an IPv4 address");
            assert!(
                block.contains(&addr),
                "{name} on {node}: {ip} not in {block}"
            );
            assert!(
                addr != block.network()
                    && addr != block.broadcast()
                    && u32::from(addr) != u32::from(block.network()) + 1,
                "{ip} is reserved"
            );
            assert!(seen.insert(ip.clone()), "{ip} given twice");
        }
    }
    let wide = c.kubectl_ok(&["get", "pods", "-n", &ns, "-o", "wide"]);
    for ip in &seen {
        assert!(wide.contains(ip.as_str()), "{ip} missing from:\n{wide}");
    }
}

#[test]
fn a_client_reaches_a_deployment_by_its_service_name() {
    nodes();
    let (c, ns) = namespace("svc-name");
    c.apply(
        &json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "echo", "namespace": ns},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "echo"}},
                "template": {
                    "metadata": {"labels": {"app": "echo"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{
                            "name": "server",
                            "image": example_image("wasip2", "echo-server"),
                            "ports": [{"name": "echo", "containerPort": 7000}],
                        }],
                    },
                },
            },
        })
        .to_string(),
    );
    c.apply(
        &json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo", "namespace": ns},
            "spec": {
                "selector": {"app": "echo"},
                "ports": [{"port": 80, "targetPort": "echo"}],
            },
        })
        .to_string(),
    );
    let client = |name: &str, target: String| -> String {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "client",
                    "image": example_image("wasip2", "echo-client"),
                    "env": [
                        {"name": "TARGET", "value": target},
                        {"name": "INTERVAL_MS", "value": "200"},
                    ],
                }],
            },
        })
        .to_string()
    };
    // The short name from the Service's namespace, then the full one. The
    // echo server serves one connection at a time and each node balances
    // on its own, so the clients run one after the other.
    let targets = [
        ("short", "echo:80".to_string()),
        ("full", format!("echo.{ns}.svc.cluster.local:80")),
    ];
    for (name, target) in targets {
        c.apply(&client(name, target));
        let logs = || {
            let out = c.kubectl(&["logs", "-n", &ns, name]);
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        let replied = eventually(REACH + START, || {
            let text = logs();
            text.contains("reply: ping").then_some(text)
        });
        assert!(
            replied.is_some(),
            "client {name} got no reply through the Service; its log:\n{}\nendpoints: {}",
            logs(),
            c.get(&format!("/api/v1/namespaces/{ns}/endpoints/echo"))
                .body
        );
        c.kubectl_ok(&["delete", "pod", "-n", &ns, name, "--wait=true"]);
    }
}

#[test]
fn a_namespace_can_deny_its_pods_egress() {
    nodes();
    let (c, ns) = namespace("no-egress");
    c.kubectl_ok(&["label", "namespace", &ns, "network.wasmpod.io/egress=deny"]);
    // An address outside the cluster (TEST-NET-1): denied at once, where
    // a pod allowed out would try the real network.
    let target = "192.0.2.1:80".to_string();
    c.apply(
        &json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "out", "namespace": ns},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "client",
                    "image": example_image("wasip2", "echo-client"),
                    "env": [
                        {"name": "TARGET", "value": target},
                        {"name": "INTERVAL_MS", "value": "200"},
                    ],
                }],
            },
        })
        .to_string(),
    );
    let denied = eventually(REACH + START, || {
        let out = c.kubectl(&["logs", "-n", &ns, "out"]);
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        (text.contains("cannot connect") && text.contains("permission denied")).then_some(text)
    });
    assert!(
        denied.is_some(),
        "the pod was not denied {target}; its log:\n{}",
        String::from_utf8_lossy(&c.kubectl(&["logs", "-n", &ns, "out"]).stdout)
    );
}
