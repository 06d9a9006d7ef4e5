//! Workload controllers on a real node, through kubectl: a Deployment of
//! the ticker example rolls out, scales, rolls forward to a new template
//! and back with `kubectl rollout undo`, replaces a deleted pod; and a
//! ReplicaSet adopts a matching orphan pod. The rollout runs on SQLite and
//! on Postgres.

mod common;

use std::time::Duration;

use common::datastore::Datastore;
use common::node::example_image;
use common::{Cluster, eventually};
use serde_json::{Value, json};

const ROLLOUT: Duration = Duration::from_secs(120);

/// A namespace on the datastore's shared cluster, with its node running.
fn setup(ds: Datastore, prefix: &str) -> (&'static Cluster, String) {
    ds.node();
    ds.namespace(prefix)
}

fn template(tick_ms: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "ticker"}},
        "spec": {"containers": [{
            "name": "ticker",
            "image": example_image("wasip2", "ticker"),
            "env": [{"name": "TICK_MS", "value": tick_ms}],
        }]},
    })
}

fn deployment(ns: &str, replicas: i32) -> String {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ticker", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "ticker"}},
            "template": template("500"),
        },
    })
    .to_string()
}

/// Names of the Running, not terminating pods labelled app=ticker.
fn running_pods(c: &Cluster, ns: &str) -> Vec<String> {
    let pods = c.get_json(ns, "pods");
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| p["status"]["phase"] == "Running")
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

#[track_caller]
fn wait_running(c: &Cluster, ns: &str, n: usize) -> Vec<String> {
    eventually(ROLLOUT, || {
        let pods = running_pods(c, ns);
        let all = c.get_json(ns, "pods")["items"]
            .as_array()
            .map_or(0, Vec::len);
        (pods.len() == n && all == n).then_some(pods)
    })
    .unwrap_or_else(|| {
        panic!(
            "{n} running pods not seen; pods:\n{}",
            c.kubectl_ok(&["get", "pods", "-n", ns])
        )
    })
}

fn rollout_status(c: &Cluster, ns: &str) {
    c.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/ticker",
        "-n",
        ns,
        "--timeout=120s",
    ]);
}

/// spec.replicas of each ReplicaSet, by name.
fn replica_sets(c: &Cluster, ns: &str) -> Vec<(String, i64)> {
    c.get_json(ns, "replicasets")["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rs| {
            (
                rs["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                rs["spec"]["replicas"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

on_each_datastore!(a_deployment_rolls_out_scales_updates_and_undoes);

fn a_deployment_rolls_out_scales_updates_and_undoes(ds: Datastore) {
    let (c, ns) = setup(ds, "deploy");
    c.apply(&deployment(&ns, 3));
    rollout_status(c, &ns);
    let first = wait_running(c, &ns, 3);
    let sets = replica_sets(c, &ns);
    assert_eq!(sets.len(), 1, "{sets:?}");
    let first_rs = sets[0].0.clone();
    assert!(first_rs.starts_with("ticker-"), "{first_rs}");
    for pod in &first {
        assert!(pod.starts_with(&format!("{first_rs}-")), "{pod}");
    }

    c.kubectl_ok(&["scale", "deployment/ticker", "--replicas=5", "-n", &ns]);
    wait_running(c, &ns, 5);
    c.kubectl_ok(&["scale", "deployment/ticker", "--replicas=1", "-n", &ns]);
    wait_running(c, &ns, 1);
    c.kubectl_ok(&["scale", "deployment/ticker", "--replicas=2", "-n", &ns]);
    rollout_status(c, &ns);

    c.kubectl_ok(&["set", "env", "deployment/ticker", "TICK_MS=250", "-n", &ns]);
    rollout_status(c, &ns);
    wait_running(c, &ns, 2);
    let sets = replica_sets(c, &ns);
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert!(sets.contains(&(first_rs.clone(), 0)), "{sets:?}");
    let pod = c.get_json(&ns, &format!("pod/{}", running_pods(c, &ns)[0]));
    assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "250");
    let history = c.kubectl_ok(&["rollout", "history", "deployment/ticker", "-n", &ns]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    c.kubectl_ok(&["rollout", "undo", "deployment/ticker", "-n", &ns]);
    rollout_status(c, &ns);
    let pods = wait_running(c, &ns, 2);
    for pod in &pods {
        assert!(
            pod.starts_with(&format!("{first_rs}-")),
            "{pod} not of {first_rs}: {}",
            c.kubectl_ok(&["get", "rs", "-n", &ns, "-o", "yaml"])
        );
    }
    let revision = c.jsonpath(
        &ns,
        &format!("rs/{first_rs}"),
        "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    );
    assert_eq!(revision, "3");

    // A deleted pod is replaced.
    c.kubectl_ok(&["delete", "pod", &pods[0], "-n", &ns, "--wait=false"]);
    let replaced = eventually(ROLLOUT, || {
        let now = running_pods(c, &ns);
        (now.len() == 2 && !now.contains(&pods[0])).then_some(now)
    });
    assert!(
        replaced.is_some(),
        "{}",
        c.kubectl_ok(&["get", "pods", "-n", &ns])
    );
}

#[test]
fn a_replica_set_adopts_a_matching_orphan() {
    let (c, ns) = setup(Datastore::Sqlite, "adopt");
    let mut orphan = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "orphan", "namespace": ns},
    });
    let t = template("500");
    orphan["metadata"]["labels"] = t["metadata"]["labels"].clone();
    orphan["spec"] = t["spec"].clone();
    c.apply(&orphan.to_string());
    c.apply(
        &json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "rs", "namespace": ns},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "ticker"}},
                "template": t,
            },
        })
        .to_string(),
    );
    let pods = wait_running(c, &ns, 2);
    assert!(pods.contains(&"orphan".to_string()), "{pods:?}");
    let owner = c.get_json(&ns, "pod/orphan")["metadata"]["ownerReferences"][0].clone();
    assert_eq!(owner["kind"], "ReplicaSet", "{owner}");
    assert_eq!(owner["name"], "rs", "{owner}");
    assert_eq!(owner["controller"], true, "{owner}");
    let ready = eventually(ROLLOUT, || {
        let rs = c.get_json(&ns, "rs/rs");
        (rs["status"]["readyReplicas"] == 2 && rs["status"]["observedGeneration"] == 1)
            .then_some(rs)
    });
    assert!(
        ready.is_some(),
        "{}",
        c.kubectl_ok(&["get", "rs/rs", "-n", &ns, "-o", "yaml"])
    );
}
