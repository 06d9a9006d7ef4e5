//! A node that restarts, gracefully or after SIGKILL, adopts the pods bound
//! to it: finished containers are not run again, lost runs follow their
//! restart policy, no container ever runs twice at once, and compiled code
//! comes from the node's cache instead of being compiled again.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Cluster;
use common::node::{NodeProcess, container_status, example_image};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(60);

fn pod(name: &str, node: &str, restart: &str, image: String, args: Value) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart,
            "containers": [{"name": "app", "image": image, "args": args}],
        },
    })
    .to_string()
}

/// The attempt numbers whose log files the node keeps for a container.
fn attempts(node: &NodeProcess, pod: &Value, container: &str) -> Vec<u32> {
    let uid = pod["metadata"]["uid"].as_str().expect("a uid");
    let dir = node
        .data_dir()
        .join("pods")
        .join(uid)
        .join("logs")
        .join(container);
    let mut found: Vec<u32> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    name.strip_suffix(".log")?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    found
}

fn restarted_node_adopts_its_pods(hard: bool) {
    let cluster = Cluster::start();
    let mut node = cluster.start_node("edge-1");
    cluster.apply(&pod(
        "done",
        "edge-1",
        "Never",
        example_image("wasip1", "hello"),
        json!([]),
    ));
    cluster.apply(&pod(
        "always",
        "edge-1",
        "Always",
        example_image("wasip2", "ticker"),
        json!(["100"]),
    ));
    cluster.apply(&pod(
        "once",
        "edge-1",
        "Never",
        example_image("wasip2", "ticker"),
        json!(["100"]),
    ));
    let done = cluster.wait_pod("default", "done", START, "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    });
    for name in ["always", "once"] {
        cluster.wait_pod("default", name, START, "running", |p| {
            !container_status(p, "app")["state"]["running"].is_null()
        });
    }
    let log_before = node.log().len();
    if hard {
        node.kill9();
    }
    node.restart(&cluster);

    // The lost run of `always` starts again, once.
    let always = cluster.wait_pod("default", "always", START, "restarted and running", |p| {
        let s = container_status(p, "app");
        s["restartCount"] == 1 && !s["state"]["running"].is_null()
    });
    // `once` must not run a second time: it ends failed.
    let once = cluster.wait_pod("default", "once", START, "phase Failed", |p| {
        p["status"]["phase"] == "Failed"
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(attempts(&node, &always, "app"), vec![0, 1]);
    assert_eq!(attempts(&node, &once, "app"), vec![0]);
    assert_eq!(attempts(&node, &done, "app"), vec![0]);
    let done = cluster.get("/api/v1/namespaces/default/pods/done").body;
    assert_eq!(done["status"]["phase"], "Succeeded");
    assert_eq!(container_status(&done, "app")["restartCount"], 0);
    let always = cluster.get("/api/v1/namespaces/default/pods/always").body;
    assert_eq!(
        container_status(&always, "app")["restartCount"],
        1,
        "{always}"
    );

    // A module that ran before the restart is not compiled again.
    cluster.apply(&pod(
        "again",
        "edge-1",
        "Never",
        example_image("wasip1", "hello"),
        json!([]),
    ));
    cluster.wait_pod("default", "again", START, "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    });
    let log = node.log();
    let after = &log[log_before.min(log.len())..];
    let loads: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("program loaded"))
        .collect();
    assert!(!loads.is_empty(), "no program loads logged:\n{after}");
    assert!(
        loads.iter().all(|l| l.contains("DiskCache")),
        "a module was compiled again after the restart:\n{}",
        loads.join("\n")
    );
    assert!(Path::new(node.data_dir()).join("compiled").is_dir());
}

#[test]
fn a_node_restarted_gracefully_adopts_its_pods() {
    restarted_node_adopts_its_pods(false);
}

#[test]
fn a_node_killed_and_restarted_adopts_its_pods() {
    restarted_node_adopts_its_pods(true);
}
