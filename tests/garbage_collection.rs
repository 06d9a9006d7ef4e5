//! Garbage collection by ownerReferences and the default ServiceAccount,
//! through kubectl: a Deployment deleted in the background takes its
//! ReplicaSets and pods along; a ReplicaSet deleted with
//! `--cascade=orphan` leaves its pods to be adopted; a Deployment deleted
//! in the foreground stays until its dependents are gone; a pod owned by a
//! ConfigMap goes with it; a deleted namespace takes its workloads along;
//! every namespace gets a `default` ServiceAccount. No node runs: pods
//! stay Pending, and unbound pods are deleted at once. Cascading and
//! namespace deletion run on SQLite and on Postgres.

mod common;

use std::time::Duration;

use common::datastore::Datastore;
use common::{Cluster, eventually, manifests, namespace, unique};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The objects of `kind` in `ns`.
fn items(c: &Cluster, ns: &str, kind: &str) -> Vec<Value> {
    c.get_json(ns, kind)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn names(objects: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = objects
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[track_caller]
fn wait_count(c: &Cluster, ns: &str, kind: &str, n: usize) -> Vec<Value> {
    eventually(TIMEOUT, || {
        let found = items(c, ns, kind);
        (found.len() == n).then_some(found)
    })
    .unwrap_or_else(|| {
        panic!(
            "expected {n} {kind} in {ns}, found {:?}",
            names(&items(c, ns, kind))
        )
    })
}

fn replica_set(name: &str, app: &str, replicas: u32) -> String {
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "app", "image": "file:///app.wasm"}]},
            },
        },
    })
    .to_string()
}

fn uid(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .expect("a stored object has a uid")
        .to_string()
}

on_each_datastore!(
    deleting_a_deployment_in_the_background_deletes_its_replica_sets_and_pods,
    a_foreground_deletion_keeps_the_deployment_until_its_dependents_are_gone,
    deleting_a_namespace_deletes_its_workloads_and_then_the_namespace,
);

fn deleting_a_deployment_in_the_background_deletes_its_replica_sets_and_pods(ds: Datastore) {
    let (c, ns) = ds.namespace("gc-background");
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &manifests::deployment("web", 2),
    );
    wait_count(c, &ns, "replicasets", 1);
    wait_count(c, &ns, "pods", 2);

    c.kubectl_ok(&["delete", "deployment", "web", "-n", &ns, "--wait=false"]);
    wait_count(c, &ns, "deployments", 0);
    wait_count(c, &ns, "replicasets", 0);
    wait_count(c, &ns, "pods", 0);
}

#[test]
fn orphaned_pods_lose_their_owner_reference_and_are_adopted_by_a_new_replica_set() {
    let (c, ns) = namespace("gc-orphan");
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &replica_set("first", "orphans", 2),
    );
    let pods = names(&wait_count(c, &ns, "pods", 2));

    c.kubectl_ok(&[
        "delete",
        "rs",
        "first",
        "-n",
        &ns,
        "--cascade=orphan",
        "--wait=false",
    ]);
    wait_count(c, &ns, "replicasets", 0);
    let released = eventually(TIMEOUT, || {
        let now = items(c, &ns, "pods");
        now.iter()
            .all(|p| p["metadata"]["ownerReferences"].is_null())
            .then_some(now)
    })
    .expect("the orphaned pods lose their ownerReferences");
    assert_eq!(names(&released), pods, "the pods stay");

    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &replica_set("second", "orphans", 2),
    );
    let second = uid(&c.get_json(&ns, "rs/second"));
    let adopted = eventually(TIMEOUT, || {
        let now = items(c, &ns, "pods");
        now.iter()
            .all(|p| p["metadata"]["ownerReferences"][0]["uid"] == second.as_str())
            .then_some(now)
    })
    .expect("the new ReplicaSet adopts the pods");
    assert_eq!(names(&adopted), pods, "adopted, not replaced");
}

fn a_foreground_deletion_keeps_the_deployment_until_its_dependents_are_gone(ds: Datastore) {
    let (c, ns) = ds.namespace("gc-foreground");
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &manifests::deployment("web", 2),
    );
    wait_count(c, &ns, "replicasets", 1);
    let pods = names(&wait_count(c, &ns, "pods", 2));
    // One pod that cannot go yet holds up its ReplicaSet and the Deployment.
    let held = &pods[0];
    c.kubectl_ok(&[
        "patch",
        "pod",
        held,
        "-n",
        &ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);

    c.kubectl_ok(&[
        "delete",
        "deployment",
        "web",
        "-n",
        &ns,
        "--cascade=foreground",
        "--wait=false",
    ]);
    eventually(TIMEOUT, || {
        let pod = c.get_json(&ns, &format!("pod/{held}"));
        pod["metadata"]["deletionTimestamp"]
            .is_string()
            .then_some(())
    })
    .expect("the held pod is being deleted");
    wait_count(c, &ns, "pods", 1);
    let deployment = c.get_json(&ns, "deployment/web");
    assert!(
        deployment["metadata"]["deletionTimestamp"].is_string(),
        "{deployment}"
    );
    assert_eq!(
        deployment["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    let rs = items(c, &ns, "replicasets");
    assert_eq!(rs.len(), 1, "the ReplicaSet waits for its pod");
    assert!(rs[0]["metadata"]["deletionTimestamp"].is_string());

    c.kubectl_ok(&[
        "patch",
        "pod",
        held,
        "-n",
        &ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_count(c, &ns, "pods", 0);
    wait_count(c, &ns, "replicasets", 0);
    wait_count(c, &ns, "deployments", 0);
}

#[test]
fn a_pod_owned_by_a_config_map_goes_with_it() {
    let (c, ns) = namespace("gc-configmap");
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &manifests::configmap("owner", &[("k", "v")]),
    );
    let owner = uid(&c.get_json(&ns, "configmap/owner"));
    let owned_pod = |name: &str, uid: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid,
                }],
            },
            "spec": {"containers": [{"name": "app", "image": "file:///app.wasm"}]},
        })
        .to_string()
    };
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &owned_pod("owned", &owner),
    );
    // A reference to a uid that no ConfigMap of that name has dangles.
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &owned_pod("stale", "00000000-0000-0000-0000-000000000000"),
    );
    eventually(TIMEOUT, || (!c.exists(&ns, "pod/stale")).then_some(()))
        .expect("a pod whose owner has another uid is deleted");
    assert!(c.exists(&ns, "pod/owned"), "a pod with its owner stays");

    c.kubectl_ok(&["delete", "configmap", "owner", "-n", &ns]);
    eventually(TIMEOUT, || (!c.exists(&ns, "pod/owned")).then_some(()))
        .expect("the pod goes with its ConfigMap");
}

fn deleting_a_namespace_deletes_its_workloads_and_then_the_namespace(ds: Datastore) {
    let c = ds.shared();
    let ns = unique("gc-namespace");
    c.kubectl_ok(&["create", "namespace", &ns]);
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &manifests::deployment("web", 2),
    );
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &manifests::configmap("settings", &[("k", "v")]),
    );
    wait_count(c, &ns, "replicasets", 1);
    wait_count(c, &ns, "pods", 2);

    // kubectl waits until the namespace is gone.
    c.kubectl_ok(&["delete", "namespace", &ns, "--timeout=60s"]);
    let err = c.kubectl_err(&["get", "namespace", &ns]);
    assert!(err.contains("NotFound"), "{err}");
    for path in [
        format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
        format!("/api/v1/namespaces/{ns}/pods"),
        format!("/api/v1/namespaces/{ns}/configmaps"),
        format!("/api/v1/namespaces/{ns}/serviceaccounts"),
    ] {
        let list = c.get(&path);
        assert_eq!(
            list.expect(200)["items"].as_array().map(Vec::len),
            Some(0),
            "{path} still lists objects after the namespace was deleted: {}",
            list.text
        );
    }
}

#[test]
fn every_namespace_gets_a_default_service_account_again_after_its_deletion() {
    let c = Cluster::shared();
    let ns = common::unique("gc-sa");
    c.kubectl_ok(&["create", "namespace", &ns]);
    let first = eventually(TIMEOUT, || {
        let out = c.kubectl(&["get", "sa", "default", "-n", &ns, "-o", "json"]);
        out.status.success().then(|| {
            let sa: Value = serde_json::from_slice(&out.stdout).expect("kubectl prints JSON");
            uid(&sa)
        })
    })
    .expect("the namespace gets a default ServiceAccount");

    c.kubectl_ok(&["delete", "sa", "default", "-n", &ns]);
    eventually(TIMEOUT, || {
        let out = c.kubectl(&["get", "sa", "default", "-n", &ns, "-o", "json"]);
        let sa: Value = serde_json::from_slice(&out.stdout).ok()?;
        (out.status.success() && uid(&sa) != first).then_some(())
    })
    .expect("the default ServiceAccount is created again");
}
