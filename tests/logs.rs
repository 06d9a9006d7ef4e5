//! `kubectl logs` end to end: the API server proxies the `log` subresource
//! to the pod's node, which serves its containers' CRI-format log files with
//! Kubernetes' options and errors.

mod common;

use std::time::Duration;

use common::namespace;
use common::node::{container_status, example_image, shared_node};
use serde_json::json;

const START: Duration = Duration::from_secs(60);

fn ticker_pod(ns: &str, name: &str, node: &str, extra_container: bool) -> String {
    let mut containers = vec![json!({
        "name": "ticker", "image": example_image("wasip2", "ticker"), "args": ["100"],
    })];
    if extra_container {
        containers.push(json!({
            "name": "second", "image": example_image("wasip2", "ticker"), "args": ["1000"],
        }));
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodeName": node, "containers": containers},
    })
    .to_string()
}

#[test]
fn follow_streams_lines_as_they_are_written() {
    let node = shared_node();
    let (c, ns) = namespace("follow");
    c.apply(&ticker_pod(&ns, "ticker", &node.name, false));
    c.wait_pod(&ns, "ticker", START, "running", |p| {
        !container_status(p, "ticker")["state"]["running"].is_null()
    });
    let mut follow = c.kubectl_background(&["logs", "-f", "ticker", "-n", &ns]);
    follow.wait_for_line("tick 2", Duration::from_secs(30));
    // Lines written after the command started arrive too.
    follow.wait_for_line("tick 25", Duration::from_secs(30));
}

#[test]
fn tail_timestamps_and_limits_shape_the_output() {
    let node = shared_node();
    let (c, ns) = namespace("logopts");
    c.apply(&ticker_pod(&ns, "ticker", &node.name, false));
    common::eventually(Duration::from_secs(30), || {
        let out = c.kubectl(&["logs", "ticker", "-n", &ns]);
        String::from_utf8_lossy(&out.stdout)
            .contains("tick 6")
            .then_some(())
    })
    .expect("six ticks");

    let tail = c.kubectl_ok(&["logs", "ticker", "-n", &ns, "--tail=2"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert!(tail.lines().all(|l| l.starts_with("tick ")), "{tail}");

    let stamped = c.kubectl_ok(&["logs", "ticker", "-n", &ns, "--timestamps", "--tail=3"]);
    for line in stamped.lines() {
        let (time, text) = line.split_once(' ').expect("a timestamp and the text");
        assert!(
            time.len() >= 20 && time.ends_with('Z') && time.contains('T'),
            "{line}"
        );
        assert!(text.starts_with("tick "), "{line}");
    }

    let limited = c.kubectl_ok(&["logs", "ticker", "-n", &ns, "--limit-bytes=4"]);
    assert_eq!(limited, "tick");

    let future = c.kubectl_ok(&[
        "logs",
        "ticker",
        "-n",
        &ns,
        "--since-time=2099-01-01T00:00:00Z",
    ]);
    assert!(future.is_empty(), "{future}");
}

#[test]
fn log_errors_name_the_container_and_the_problem() {
    let node = shared_node();
    let (c, ns) = namespace("logerr");
    c.apply(&ticker_pod(&ns, "pair", &node.name, true));
    c.wait_pod(&ns, "pair", START, "running", |p| {
        !container_status(p, "second")["state"]["running"].is_null()
    });
    let err = c.kubectl_err(&["logs", "pair", "-n", &ns, "-c", "nope"]);
    assert!(
        err.contains("container nope is not valid for pod pair"),
        "{err}"
    );

    let err = c.kubectl_err(&["logs", "pair", "-n", &ns, "-c", "ticker", "--previous"]);
    assert!(err.contains("previous terminated container"), "{err}");

    let resp = c.get(&format!("/api/v1/namespaces/{ns}/pods/pair/log"));
    assert_eq!(resp.status, 400, "{}", resp.text);
    assert!(
        resp.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("a container name must be specified for pod pair")),
        "{}",
        resp.text
    );

    let resp = c.get(&format!(
        "/api/v1/namespaces/{ns}/pods/pair/log?container=ticker&tailLines=-1"
    ));
    assert_eq!(resp.status, 400, "{}", resp.text);
    assert!(resp.text.contains("tailLines"), "{}", resp.text);

    let resp = c.get(&format!("/api/v1/namespaces/{ns}/pods/missing/log"));
    assert_eq!(resp.status, 404, "{}", resp.text);

    let node_object = c.get(&format!("/api/v1/nodes/{}", node.name)).body;
    assert!(
        node_object["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            .as_u64()
            .is_some_and(|p| p > 0),
        "{node_object}"
    );
}
