//! The pods' network across nodes: two real nodes on distinct loopback
//! addresses (127.0.0.2 and 127.0.0.3); a pod on one reaches a pod on the
//! other by pod IP through the other's tunnel, and a NodePort or hostPort
//! on a node's address reaches pods from outside the cluster.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use common::node::{NodeOptions, NodeProcess, example_image};
use common::{Cluster, eventually, namespace};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(60);
const REACH: Duration = Duration::from_secs(30);

const IP_A: &str = "127.0.0.2";
const IP_B: &str = "127.0.0.3";

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
        (start("node-a", IP_A), start("node-b", IP_B))
    })
}

fn pod(ns: &str, name: &str, node: &str, labels: Value, containers: Value) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": containers,
        },
    })
    .to_string()
}

fn echo_server(ports: Value) -> Value {
    json!([{
        "name": "server",
        "image": example_image("wasip2", "echo-server"),
        "env": [{"name": "LISTEN", "value": "0.0.0.0:7000"}],
        "ports": ports,
    }])
}

/// Waits until the pod runs with a pod IP; returns the IP.
fn running_pod_ip(c: &Cluster, ns: &str, name: &str) -> String {
    let p = c.wait_pod(ns, name, START, "Running with a pod IP", |p| {
        p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string()
    });
    p["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A port in the NodePort range that nobody on `ip` listens on now.
fn free_node_port(ip: &str, seed: u16) -> u16 {
    (0..2000)
        .map(|i| 30000 + (seed.wrapping_mul(97).wrapping_add(i) % 2768))
        .find(|port| TcpListener::bind((ip, *port)).is_ok())
        .expect("a free port in the NodePort range")
}

/// Connects to `addr`, sends a line and returns the line that comes back.
fn echo_line(addr: SocketAddr, line: &str) -> Option<String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    (&stream).write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).ok()?;
    (!reply.is_empty()).then(|| reply.trim_end().to_string())
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().expect("an IP"), port)
}

#[test]
fn nodes_advertise_their_tunnels() {
    let (a, _b) = nodes();
    let c = Cluster::shared();
    let node = c.get(&format!("/api/v1/nodes/{}", a.name));
    let tunnel = node.body["metadata"]["annotations"]["network.wasmpod.io/tunnel"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let tunnel: SocketAddr = tunnel
        .parse()
        .unwrap_or_else(|_| panic!("a tunnel address, got {tunnel:?}"));
    assert_eq!(tunnel.ip().to_string(), IP_A);
    assert_ne!(tunnel.port(), 0);
}

#[test]
fn a_pod_reaches_a_pod_on_another_node_by_pod_ip() {
    let (a, b) = nodes();
    let (c, ns) = namespace("cross-pod");
    c.apply(&pod(
        &ns,
        "server",
        &b.name,
        json!({"app": "echo"}),
        echo_server(json!([])),
    ));
    let server_ip = running_pod_ip(c, &ns, "server");
    c.apply(&pod(
        &ns,
        "client",
        &a.name,
        json!({"app": "client"}),
        json!([{
            "name": "client",
            "image": example_image("wasip2", "echo-client"),
            "env": [
                {"name": "TARGET", "value": format!("{server_ip}:7000")},
                {"name": "INTERVAL_MS", "value": "200"},
            ],
        }]),
    ));
    let client_ip = running_pod_ip(c, &ns, "client");
    let subnet = |ip: &str| ip.rsplit_once('.').map(|(net, _)| net.to_string());
    assert_ne!(
        subnet(&client_ip),
        subnet(&server_ip),
        "each node hands out pod IPs of its own block"
    );
    let replied = eventually(REACH, || {
        let out = c.kubectl(&["logs", "-n", &ns, "client"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.contains("reply: ping").then_some(text)
    });
    assert!(
        replied.is_some(),
        "the client on {} got no reply from {server_ip} on {}; its log:\n{}",
        a.name,
        b.name,
        String::from_utf8_lossy(&c.kubectl(&["logs", "-n", &ns, "client"]).stdout)
    );
}

#[test]
fn a_node_port_reaches_the_service_from_every_node() {
    let (_a, b) = nodes();
    let (c, ns) = namespace("cross-nodeport");
    c.apply(&pod(
        &ns,
        "server",
        &b.name,
        json!({"app": "echo"}),
        echo_server(json!([])),
    ));
    running_pod_ip(c, &ns, "server");
    let node_port = free_node_port(IP_A, 11).max(free_node_port(IP_B, 11));
    c.apply(
        &json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo", "namespace": ns},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "echo"},
                "ports": [{"port": 7000, "targetPort": 7000, "nodePort": node_port}],
            },
        })
        .to_string(),
    );
    // Node A has no endpoint of its own: its NodePort goes through B's
    // tunnel; node B's reaches its own pod.
    for ip in [IP_A, IP_B] {
        let reply = eventually(REACH, || echo_line(addr(ip, node_port), "hello"));
        assert_eq!(
            reply.as_deref(),
            Some("hello"),
            "no echo through NodePort {ip}:{node_port}"
        );
    }
}

#[test]
fn a_host_port_exposes_the_pod_on_its_nodes_address() {
    let (_a, b) = nodes();
    let (c, ns) = namespace("cross-hostport");
    let host_port = free_node_port(IP_B, 23);
    c.apply(&pod(
        &ns,
        "server",
        &b.name,
        json!({"app": "hostport"}),
        echo_server(json!([{"containerPort": 7000, "hostPort": host_port}])),
    ));
    running_pod_ip(c, &ns, "server");
    let reply = eventually(REACH, || echo_line(addr(IP_B, host_port), "hi"));
    assert_eq!(
        reply.as_deref(),
        Some("hi"),
        "no echo through hostPort {IP_B}:{host_port}"
    );
    c.kubectl_ok(&["delete", "pod", "-n", &ns, "server", "--wait=true"]);
    let closed = eventually(REACH, || {
        TcpStream::connect_timeout(&addr(IP_B, host_port), Duration::from_secs(1))
            .is_err()
            .then_some(())
    });
    assert!(closed.is_some(), "the hostPort closes with its pod");
}
