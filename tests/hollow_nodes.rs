//! Hollow nodes end to end: `wasmpod node --hollow --count 5` registers five
//! Ready nodes in one process; a Deployment's pods spread over them and
//! report Running (nothing executes); deleting the Deployment removes them.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::process::ServerProcess;
use common::{Cluster, eventually, manifests};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `count` hollow nodes named `<prefix>-<i>` against `c`.
fn start_hollow_nodes(c: &Cluster, prefix: &str, count: u32) -> (ServerProcess, String) {
    let dir = c.scratch_dir(prefix);
    let log = dir.join("hollow.log");
    let args: Vec<String> = [
        "node",
        "--hollow",
        "--count",
        &count.to_string(),
        "--name",
        prefix,
        "--server",
        &c.base_url(),
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--node-ip",
        "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let process = ServerProcess::spawn(Path::new(env!("CARGO_BIN_EXE_wasmpod")), &args, &log, None);
    (process, log.display().to_string())
}

fn log_of(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `(name, status)` of every node `kubectl get nodes` lists.
fn kubectl_nodes(c: &Cluster) -> Vec<(String, String)> {
    c.kubectl_ok(&["get", "nodes", "--no-headers"])
        .lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            Some((cols.next()?.to_string(), cols.next()?.to_string()))
        })
        .collect()
}

fn pods(c: &Cluster, ns: &str) -> Vec<Value> {
    let list = c.get(&format!("/api/v1/namespaces/{ns}/pods"));
    list.body["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn hollow_nodes_register_ready_and_run_a_deployments_pods_until_deleted() {
    let c = Cluster::start();
    let (mut process, log) = start_hollow_nodes(&c, "hn", 5);
    let wanted: HashSet<String> = (0..5).map(|i| format!("hn-{i}")).collect();
    let ready = eventually(TIMEOUT, || {
        assert!(!process.exited(), "hollow nodes exited:\n{}", log_of(&log));
        let ready: HashSet<String> = kubectl_nodes(&c)
            .into_iter()
            .filter(|(_, status)| status == "Ready")
            .map(|(name, _)| name)
            .collect();
        (ready == wanted).then_some(ready)
    });
    assert!(
        ready.is_some(),
        "nodes: {:?}\n{}",
        kubectl_nodes(&c),
        log_of(&log)
    );
    for name in &wanted {
        let lease = c.get(&format!(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        ));
        assert_eq!(lease.status, 200, "the Lease of {name}");
        assert_eq!(lease.body["spec"]["holderIdentity"], name.as_str());
    }

    c.create_namespace("hollow");
    c.kubectl_ok_stdin(
        &["apply", "-n", "hollow", "-f", "-"],
        &manifests::deployment("web", 10),
    );
    let running = eventually(TIMEOUT, || {
        let pods = pods(&c, "hollow");
        let running: Vec<&Value> = pods
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .filter(|p| p["status"]["containerStatuses"][0]["state"]["running"].is_object())
            .collect();
        (running.len() == 10).then(|| {
            running
                .iter()
                .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
    });
    let Some(nodes) = running else {
        panic!(
            "pods: {}\n{}",
            c.kubectl_ok(&["get", "pods", "-n", "hollow", "-o", "wide"]),
            log_of(&log)
        );
    };
    let used: HashSet<&String> = nodes.iter().collect();
    assert!(
        used.len() >= 3 && used.iter().all(|n| wanted.contains(*n)),
        "10 pods should spread over the hollow nodes: {nodes:?}"
    );

    c.kubectl_ok(&["delete", "deployment", "web", "-n", "hollow"]);
    let gone = eventually(TIMEOUT, || pods(&c, "hollow").is_empty().then_some(()));
    assert!(
        gone.is_some(),
        "pods left: {}",
        c.kubectl_ok(&["get", "pods", "-n", "hollow"])
    );
    assert!(!process.exited(), "hollow nodes exited:\n{}", log_of(&log));
}
