//! Pods on a real node, through kubectl: the example programs' status, logs
//! and exit codes, memory and CPU limits, crash loops, graceful deletion,
//! shared volumes, configuration from ConfigMaps and Secrets, and modules
//! that cannot run.

mod common;

use std::time::{Duration, Instant};

use common::node::{container_status, example_image, shared_node};
use common::{Cluster, namespace};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(60);

/// A namespace on the shared cluster, with the shared node running.
fn setup(prefix: &str) -> (&'static Cluster, String, String) {
    let node = shared_node();
    let (cluster, ns) = namespace(prefix);
    (cluster, ns, node.name.clone())
}

/// A pod bound to `node` with the given containers and spec fields.
fn pod(ns: &str, name: &str, node: &str, spec: Value) -> String {
    let mut spec = spec;
    spec["nodeName"] = json!(node);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
    .to_string()
}

fn phase_is(phase: &'static str) -> impl FnMut(&Value) -> bool {
    move |p| p["status"]["phase"] == phase
}

fn terminated(name: &'static str) -> impl FnMut(&Value) -> bool {
    move |p| !container_status(p, name)["state"]["terminated"].is_null()
}

fn running(name: &'static str) -> impl FnMut(&Value) -> bool {
    move |p| !container_status(p, name)["state"]["running"].is_null()
}

#[test]
fn hello_completes_and_its_output_is_in_the_logs() {
    let (c, ns, node) = setup("hello");
    c.apply(&pod(
        &ns,
        "hello",
        &node,
        json!({
            "restartPolicy": "Never",
            "containers": [{
                "name": "hello",
                "image": example_image("wasip2", "hello"),
                "args": ["from", "a", "pod"],
                "env": [
                    {"name": "GREETING", "value": "Hi"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
            }],
        }),
    ));
    let p = c.wait_pod(
        &ns,
        "hello",
        START,
        "phase Succeeded",
        phase_is("Succeeded"),
    );
    let state = &container_status(&p, "hello")["state"]["terminated"];
    assert_eq!(state["exitCode"], 0, "{state}");
    assert_eq!(state["reason"], "Completed", "{state}");
    assert!(
        container_status(&p, "hello")["imageID"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:"))
    );
    let logs = c.kubectl_ok(&["logs", "hello", "-n", &ns]);
    assert!(logs.contains("Hi from wasmpod!"), "{logs}");
    assert!(logs.contains(r#""from", "a", "pod""#), "{logs}");
    let columns = c.kubectl_ok(&["get", "pod", "hello", "-n", &ns, "--no-headers"]);
    assert!(columns.contains("Completed"), "{columns}");
}

#[test]
fn exit_codes_and_reasons_are_reported() {
    let (c, ns, node) = setup("exits");
    for (name, args) in [("ok", json!(["1000"])), ("fails", json!(["--fail"]))] {
        c.apply(&pod(
            &ns,
            name,
            &node,
            json!({
                "restartPolicy": "Never",
                "containers": [{"name": "primes", "image": example_image("wasip1", "primes"), "args": args}],
            }),
        ));
    }
    let ok = c.wait_pod(&ns, "ok", START, "phase Succeeded", phase_is("Succeeded"));
    assert_eq!(
        container_status(&ok, "primes")["state"]["terminated"]["exitCode"],
        0
    );
    let logs = c.kubectl_ok(&["logs", "ok", "-n", &ns]);
    assert!(
        logs.contains("primes below 1000: count 168, sum 76127"),
        "{logs}"
    );

    let failed = c.wait_pod(&ns, "fails", START, "phase Failed", phase_is("Failed"));
    let state = &container_status(&failed, "primes")["state"]["terminated"];
    assert_eq!(state["exitCode"], 3, "{state}");
    assert_eq!(state["reason"], "Error", "{state}");
    let columns = c.kubectl_ok(&["get", "pod", "fails", "-n", &ns, "--no-headers"]);
    assert!(columns.contains("Error"), "{columns}");
}

#[test]
fn a_module_over_its_memory_limit_is_oom_killed() {
    let (c, ns, node) = setup("oom");
    c.apply(&pod(
        &ns,
        "memhog",
        &node,
        json!({
            "restartPolicy": "Never",
            "containers": [{
                "name": "memhog",
                "image": example_image("wasip2", "memhog"),
                "args": ["16"],
                "resources": {"limits": {"memory": "64Mi"}},
            }],
        }),
    ));
    let p = c.wait_pod(&ns, "memhog", START, "termination", terminated("memhog"));
    let state = &container_status(&p, "memhog")["state"]["terminated"];
    assert_eq!(state["reason"], "OOMKilled", "{state}");
    assert_eq!(p["status"]["phase"], "Failed");
    let logs = c.kubectl_ok(&["logs", "memhog", "-n", &ns]);
    assert!(logs.contains("holding 48 MiB"), "{logs}");
    assert!(!logs.contains("holding 64 MiB"), "{logs}");
}

#[test]
fn a_crash_loop_backs_off_with_growing_delays() {
    let (c, ns, node) = setup("crashloop");
    c.apply(&pod(
        &ns,
        "crasher",
        &node,
        json!({
            "restartPolicy": "Always",
            "containers": [{"name": "crasher", "image": example_image("wasip1", "primes"), "args": ["--fail"]}],
        }),
    ));
    // The node under test backs off 1 s, doubling: restarts come at about
    // 0, 1, 3 and 7 s after the first exit.
    let started = Instant::now();
    let mut seen_at: Vec<(u64, Duration)> = Vec::new();
    let mut crash_loop_seen = false;
    while seen_at.last().is_none_or(|(count, _)| *count < 4) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "restarts seen: {seen_at:?}"
        );
        let p = c.get(&format!("/api/v1/namespaces/{ns}/pods/crasher")).body;
        let status = container_status(&p, "crasher");
        crash_loop_seen |= status["state"]["waiting"]["reason"] == "CrashLoopBackOff";
        if let Some(count) = status["restartCount"].as_u64()
            && seen_at.last().is_none_or(|(last, _)| count > *last)
        {
            seen_at.push((count, started.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(crash_loop_seen, "no CrashLoopBackOff among {seen_at:?}");
    let at = |n: u64| {
        seen_at
            .iter()
            .find(|(count, _)| *count >= n)
            .map(|(_, t)| *t)
            .unwrap_or_else(|| panic!("restart {n} not seen: {seen_at:?}"))
    };
    let first_gap = at(2) - at(1);
    let third_gap = at(4) - at(3);
    assert!(
        third_gap > first_gap + Duration::from_millis(1500),
        "delays do not grow: {seen_at:?}"
    );
    let p = c.get(&format!("/api/v1/namespaces/{ns}/pods/crasher")).body;
    let last = &container_status(&p, "crasher")["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 3, "{p}");
    let previous = c.kubectl_ok(&["logs", "crasher", "-n", &ns, "--previous"]);
    assert!(!previous.trim().is_empty(), "no previous logs");
}

#[test]
fn deleting_a_busy_pod_ends_within_its_grace_period() {
    let (c, ns, node) = setup("spin");
    c.apply(&pod(
        &ns,
        "bystander",
        &node,
        json!({
            "containers": [{"name": "ticker", "image": example_image("wasip2", "ticker"), "args": ["200"]}],
        }),
    ));
    c.apply(&pod(
        &ns,
        "spin",
        &node,
        json!({
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "spin",
                "image": example_image("wasip2", "spin"),
                "resources": {"limits": {"cpu": "100m"}},
            }],
        }),
    ));
    c.wait_pod(&ns, "spin", START, "running", running("spin"));
    c.wait_pod(&ns, "bystander", START, "running", running("ticker"));
    let started = Instant::now();
    c.kubectl_ok(&[
        "delete",
        "pod",
        "spin",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=30s",
    ]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "deleting took {took:?}");
    assert!(!c.exists(&ns, "pod/spin"));
    // The busy module took nothing from its neighbour.
    let p = c
        .get(&format!("/api/v1/namespaces/{ns}/pods/bystander"))
        .body;
    assert!(
        !container_status(&p, "ticker")["state"]["running"].is_null(),
        "{p}"
    );
    assert_eq!(container_status(&p, "ticker")["restartCount"], 0);
}

#[test]
fn two_modules_share_a_file_through_an_empty_dir() {
    let (c, ns, node) = setup("shared");
    let mount = json!([{"name": "shared", "mountPath": "/data"}]);
    c.apply(&pod(
        &ns,
        "pair",
        &node,
        json!({
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "containers": [
                {"name": "writer", "image": example_image("wasip2", "writer"), "volumeMounts": mount},
                {"name": "reader", "image": example_image("wasip2", "reader"),
                 "volumeMounts": [{"name": "shared", "mountPath": "/data", "readOnly": true}]},
            ],
        }),
    ));
    let found = common::eventually(Duration::from_secs(60), || {
        let out = c.kubectl(&["logs", "pair", "-n", &ns, "-c", "reader"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("read: line 2 from writer").then_some(text)
    });
    assert!(found.is_some(), "the reader never saw the writer's lines");
    let p = c.get(&format!("/api/v1/namespaces/{ns}/pods/pair")).body;
    assert_eq!(p["status"]["phase"], "Running", "{p}");
}

#[test]
fn config_map_and_secret_values_reach_the_module() {
    let (c, ns, node) = setup("configured");
    c.kubectl_ok(&[
        "create",
        "configmap",
        "app-config",
        "-n",
        &ns,
        "--from-literal=config.txt=greeting=hello\nworkers=4\n",
    ]);
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "app-secret",
        "-n",
        &ns,
        "--from-literal=password=correct-horse-battery-staple",
    ]);
    c.apply(&pod(
        &ns,
        "configured",
        &node,
        json!({
            "restartPolicy": "Never",
            "volumes": [{"name": "config", "configMap": {"name": "app-config"}}],
            "containers": [{
                "name": "configured",
                "image": example_image("wasip2", "configured"),
                "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}}],
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
            }],
        }),
    ));
    c.wait_pod(
        &ns,
        "configured",
        START,
        "phase Succeeded",
        phase_is("Succeeded"),
    );
    let logs = c.kubectl_ok(&["logs", "configured", "-n", &ns]);
    assert!(logs.contains("greeting=hello"), "{logs}");
    assert!(logs.contains("password length: 28"), "{logs}");
    assert!(!logs.contains("correct-horse"), "{logs}");
}

#[test]
fn modules_that_cannot_run_fail_their_pod_with_a_reason() {
    let (c, ns, node) = setup("badimage");
    let dir = c.scratch_dir(&ns);
    let text = dir.join("not-wasm.wasm");
    std::fs::write(&text, "this is not a module").expect("writing a file");
    let cases = [
        (
            "not-wasm",
            format!("file://{}", text.display()),
            &["InvalidImage"][..],
        ),
        (
            "missing",
            "file:///no/such/module.wasm".to_string(),
            &["ErrImagePull", "ImagePullBackOff"][..],
        ),
        (
            "wrong-digest",
            format!(
                "{}@sha256:{}",
                example_image("wasip2", "hello"),
                "0".repeat(64)
            ),
            &["ErrImagePull", "ImagePullBackOff"][..],
        ),
    ];
    for (name, image, _) in &cases {
        c.apply(&pod(
            &ns,
            name,
            &node,
            json!({"restartPolicy": "Never", "containers": [{"name": "app", "image": image}]}),
        ));
    }
    for (name, _, reasons) in &cases {
        let p = c.wait_pod(&ns, name, START, "a waiting reason", |p| {
            container_status(p, "app")["state"]["waiting"]["reason"]
                .as_str()
                .is_some_and(|r| reasons.contains(&r))
        });
        let message = container_status(&p, "app")["state"]["waiting"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!message.is_empty(), "{name}: no message in {p}");
        assert_eq!(p["status"]["phase"], "Pending", "{name}");
    }
    let events = c.kubectl_ok(&["get", "events", "-n", &ns]);
    assert!(
        events.contains("InvalidImage") || events.contains("Failed"),
        "{events}"
    );
    // The node still runs other pods.
    c.apply(&pod(
        &ns,
        "fine",
        &node,
        json!({"restartPolicy": "Never", "containers": [{"name": "app", "image": example_image("wasip1", "hello")}]}),
    ));
    c.wait_pod(&ns, "fine", START, "phase Succeeded", phase_is("Succeeded"));
}
