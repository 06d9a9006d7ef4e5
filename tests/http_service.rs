//! A `wasi:http` component as a Kubernetes user runs a web service: a
//! 3-replica Deployment of the http-echo example behind a NodePort Service,
//! reached with curl from the host. The three replicas share one node and
//! all serve container port 8080; every request gets its own instance, and
//! the node balances connections over the ready endpoints in the Service's
//! mode. Also: two containers of one pod talk over 127.0.0.1.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::node::{NodeOptions, NodeProcess, example_image};
use common::{Cluster, eventually, namespace};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(90);
const CONVERGE: Duration = Duration::from_secs(30);
const REPLICAS: usize = 3;

/// The node's address: distinct from the other test files' nodes, so its
/// NodePorts never collide with theirs.
const NODE_IP: &str = "127.0.0.5";

/// The one node of this file, started once.
fn node() -> &'static NodeProcess {
    static NODE: OnceLock<NodeProcess> = OnceLock::new();
    NODE.get_or_init(|| {
        Cluster::shared().start_node_with(
            "http-node",
            NodeOptions {
                node_ip: NODE_IP,
                ..NodeOptions::default()
            },
        )
    })
}

/// A port in the NodePort range that nobody listens on now on the node's
/// address; `seed` keeps the tests of this file apart.
fn free_node_port(seed: u16) -> u16 {
    (0..2000)
        .map(|i| 30000 + (seed.wrapping_mul(211).wrapping_add(i) % 2768))
        .find(|port| TcpListener::bind((NODE_IP, *port)).is_ok())
        .expect("a free port in the NodePort range")
}

/// The http-echo Deployment and its NodePort Service, with the Service's
/// annotations; returns the nodePort.
fn deploy_http_echo(c: &Cluster, ns: &str, annotations: Value, seed: u16) -> u16 {
    c.apply(
        &json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "http-echo", "namespace": ns},
            "spec": {
                "replicas": REPLICAS,
                "selector": {"matchLabels": {"app": "http-echo"}},
                "template": {
                    "metadata": {"labels": {"app": "http-echo"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{
                            "name": "http-echo",
                            "image": example_image("wasip2", "http-echo"),
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [{
                                "name": "HOSTNAME",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            }],
                        }],
                    },
                },
            },
        })
        .to_string(),
    );
    let node_port = free_node_port(seed);
    c.apply(
        &json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "http-echo", "namespace": ns, "annotations": annotations},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "http-echo"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": node_port}],
            },
        })
        .to_string(),
    );
    node_port
}

/// The names of the pods in the Service's ready addresses.
fn ready_endpoints(c: &Cluster, ns: &str) -> Vec<String> {
    let resp = c.get(&format!("/api/v1/namespaces/{ns}/endpoints/http-echo"));
    if resp.status != 200 {
        return Vec::new();
    }
    let mut names: Vec<String> = resp.body["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|subset| subset["addresses"].as_array().into_iter().flatten())
        .filter_map(|address| address["targetRef"]["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// `count` GET requests with curl, each on its own connection (so each is
/// balanced on its own); the pod name each reply names, with how many
/// replies named it. Replies without a name count under "".
fn curl_spread(node_port: u16, count: usize) -> BTreeMap<String, usize> {
    let url = format!("http://{NODE_IP}:{node_port}/hello/[1-{count}]");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-H", "Connection: close", &url])
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut spread = BTreeMap::new();
    for reply in text.split("GET /hello/").skip(1) {
        let name = reply
            .lines()
            .find_map(|line| line.strip_prefix("hostname: "))
            .unwrap_or_default();
        *spread.entry(name.to_string()).or_insert(0) += 1;
    }
    spread
}

/// The HTTP status and body of one request with curl.
fn curl(node_port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            &format!("http://{NODE_IP}:{node_port}{path}"),
        ])
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Waits until all replicas are ready endpoints and each of them answers
/// through the NodePort; returns their pod names.
fn wait_for_replicas(c: &Cluster, ns: &str, node_port: u16) -> Vec<String> {
    let ready = eventually(START, || {
        let names = ready_endpoints(c, ns);
        (names.len() == REPLICAS).then_some(names)
    });
    let Some(names) = ready else {
        panic!(
            "the Service never had {REPLICAS} ready endpoints: {}\npods: {}",
            c.get(&format!("/api/v1/namespaces/{ns}/endpoints/http-echo"))
                .body,
            c.kubectl_ok(&["get", "pods", "-n", ns, "-o", "wide"])
        );
    };
    let served = eventually(CONVERGE, || {
        let spread = curl_spread(node_port, 3 * REPLICAS);
        names
            .iter()
            .all(|name| spread.contains_key(name))
            .then_some(())
    });
    assert!(
        served.is_some(),
        "not every replica answered through {NODE_IP}:{node_port}: last spread {:?}, endpoints {names:?}",
        curl_spread(node_port, 3 * REPLICAS)
    );
    names
}

/// Asserts that `spread` covers exactly `names`, each within ±20 % of an
/// even share of `total`.
#[track_caller]
fn assert_even(spread: &BTreeMap<String, usize>, names: &[String], total: usize) {
    let served: usize = spread.values().sum();
    assert_eq!(served, total, "every request gets a reply: {spread:?}");
    let share = total / names.len();
    for name in names {
        let got = spread.get(name).copied().unwrap_or(0);
        assert!(
            got * 5 >= share * 4 && got * 5 <= share * 6,
            "{name} served {got} of {total} requests, outside {share} ±20 %: {spread:?}"
        );
    }
    assert_eq!(
        spread.len(),
        names.len(),
        "only the ready endpoints answer: {spread:?}"
    );
}

#[test]
fn round_robin_spreads_curl_requests_evenly_and_skips_a_deleted_replica() {
    node();
    let (c, ns) = namespace("http-rr");
    let node_port = deploy_http_echo(c, &ns, json!({}), 1);
    let names = wait_for_replicas(c, &ns, node_port);

    assert_even(&curl_spread(node_port, 300), &names, 300);

    // Delete one replica; once Endpoints no longer list it, no request
    // reaches it.
    let gone = &names[0];
    c.kubectl_ok(&["delete", "pod", "-n", &ns, gone, "--wait=false"]);
    let converged = eventually(CONVERGE, || {
        (!ready_endpoints(c, &ns).contains(gone)).then_some(())
    });
    assert!(
        converged.is_some(),
        "{gone} stays in the Endpoints after its deletion: {:?}",
        ready_endpoints(c, &ns)
    );
    // The node follows the Endpoints within its sync interval (50 ms).
    std::thread::sleep(Duration::from_millis(500));
    let spread = curl_spread(node_port, 150);
    assert_eq!(spread.values().sum::<usize>(), 150, "{spread:?}");
    assert!(
        !spread.contains_key(gone),
        "a deleted replica still served requests: {spread:?}"
    );
}

#[test]
fn random_balancing_spreads_requests_within_a_fifth() {
    node();
    let (c, ns) = namespace("http-random");
    let node_port = deploy_http_echo(c, &ns, json!({"network.wasmpod.io/balancing": "random"}), 2);
    let names = wait_for_replicas(c, &ns, node_port);
    // 600 draws over three: each share is 200 with a standard deviation of
    // ~11.5, so ±40 is 3.5 deviations.
    assert_even(&curl_spread(node_port, 600), &names, 600);
}

#[test]
fn each_request_gets_its_own_instance_so_a_trap_fails_only_its_request() {
    node();
    let (c, ns) = namespace("http-trap");
    let node_port = deploy_http_echo(c, &ns, json!({}), 3);
    wait_for_replicas(c, &ns, node_port);
    let (status, body) = curl(node_port, "/trap");
    assert_eq!(status, 500, "a trapping request is a 500: {body}");
    for _ in 0..REPLICAS {
        let (status, body) = curl(node_port, "/after-trap");
        assert_eq!(status, 200, "the next request is served: {body}");
        assert!(body.starts_with("GET /after-trap\n"), "{body}");
    }
    let pods = c.get_json(&ns, "pods");
    for pod in pods["items"].as_array().into_iter().flatten() {
        let status = &pod["status"]["containerStatuses"][0];
        assert_eq!(
            status["restartCount"], 0,
            "a trap in one request restarts nothing: {status}"
        );
        assert_eq!(status["ready"], true, "{status}");
    }
}

#[test]
fn sidecars_talk_over_the_pods_loopback() {
    let node = node();
    let (c, ns) = namespace("http-sidecars");
    c.apply(
        &json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sidecars", "namespace": ns},
            "spec": {
                "nodeName": node.name,
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "echo-server",
                        "image": example_image("wasip2", "echo-server"),
                        "env": [{"name": "LISTEN", "value": "127.0.0.1:7000"}],
                    },
                    {
                        "name": "echo-client",
                        "image": example_image("wasip2", "echo-client"),
                        "env": [
                            {"name": "TARGET", "value": "127.0.0.1:7000"},
                            {"name": "INTERVAL_MS", "value": "200"},
                        ],
                    },
                ],
            },
        })
        .to_string(),
    );
    let logs = || {
        let out = c.kubectl(&["logs", "-n", &ns, "sidecars", "-c", "echo-client"]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let replied = eventually(START, || {
        let text = logs();
        (text.matches("reply: ping").count() >= 2).then_some(text)
    });
    assert!(
        replied.is_some(),
        "the client sidecar got no replies over 127.0.0.1; its log:\n{}\npod: {}",
        logs(),
        c.get(&format!("/api/v1/namespaces/{ns}/pods/sidecars"))
            .body
    );
}
