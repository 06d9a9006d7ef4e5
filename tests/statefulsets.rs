//! StatefulSets on a real node, through kubectl: stable pod names created
//! in order and removed from the highest ordinal, a rolling update from the
//! highest ordinal down with `kubectl rollout status|history|undo`, and one
//! PersistentVolumeClaim per ordinal that outlives its pod and a scale-down.
//! Identity and claims run on SQLite and on Postgres.

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

fn stateful_set(ns: &str, replicas: i32, policy: &str, claims: Value) -> String {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                // Modules get no signal: a deleted pod runs out its grace
                // period before its instance is interrupted.
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "ticker",
                    "image": example_image("wasip2", "ticker"),
                    "env": [{"name": "TICK_MS", "value": "500"}],
                }]},
            },
            "volumeClaimTemplates": claims,
        },
    })
    .to_string()
}

/// The pods of the namespace: name -> (phase, terminating, uid, revision).
fn pods(c: &Cluster, ns: &str) -> Vec<(String, String, bool, String, String)> {
    c.get_json(ns, "pods")["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&p["metadata"]["name"]),
                s(&p["status"]["phase"]),
                !p["metadata"]["deletionTimestamp"].is_null(),
                s(&p["metadata"]["uid"]),
                s(&p["metadata"]["labels"]["controller-revision-hash"]),
            )
        })
        .collect()
}

/// Waits until exactly `names` exist and are Running; returns their uids.
#[track_caller]
fn wait_running(c: &Cluster, ns: &str, names: &[&str]) -> Vec<String> {
    eventually(ROLLOUT, || {
        let now = pods(c, ns);
        let mut seen: Vec<&str> = now.iter().map(|p| p.0.as_str()).collect();
        seen.sort_unstable();
        let running = now.iter().all(|p| p.1 == "Running" && !p.2);
        (seen == names && running).then(|| {
            names
                .iter()
                .filter_map(|n| now.iter().find(|p| p.0 == *n).map(|p| p.3.clone()))
                .collect()
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "pods {names:?} not Running; pods:\n{}",
            c.kubectl_ok(&["get", "pods", "-n", ns])
        )
    })
}

fn rollout_status(c: &Cluster, ns: &str) {
    c.kubectl_ok(&[
        "rollout",
        "status",
        "statefulset/web",
        "-n",
        ns,
        "--timeout=120s",
    ]);
}

/// The pod `name`, if it exists.
fn pod_if_any(c: &Cluster, ns: &str, name: &str) -> Option<Value> {
    let r = c.get(&format!("/api/v1/namespaces/{ns}/pods/{name}"));
    (r.status == 200).then_some(r.body)
}

/// The reasons and messages of the set's events, oldest first.
fn events(c: &Cluster, ns: &str) -> Vec<String> {
    let mut items: Vec<Value> = c.get_json(ns, "events")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    items.sort_by_key(|e| {
        e["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse::<u64>().ok())
    });
    items
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == "StatefulSet")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

on_each_datastore!(
    ordered_pods_keep_their_names_scale_in_order_and_roll_back,
    each_ordinal_has_its_own_claim_that_outlives_pod_and_scale_down,
);

fn ordered_pods_keep_their_names_scale_in_order_and_roll_back(ds: Datastore) {
    let (c, ns) = setup(ds, "sts");
    c.apply(&stateful_set(&ns, 3, "OrderedReady", json!([])));
    rollout_status(c, &ns);
    let uids = wait_running(c, &ns, &["web-0", "web-1", "web-2"]);
    let created: Vec<String> = events(c, &ns)
        .into_iter()
        .filter(|m| m.starts_with("create Pod"))
        .collect();
    assert_eq!(
        created,
        [
            "create Pod web-0 in StatefulSet web successful",
            "create Pod web-1 in StatefulSet web successful",
            "create Pod web-2 in StatefulSet web successful",
        ]
    );
    let pod = c.get_json(&ns, "pod/web-1");
    assert_eq!(pod["spec"]["hostname"], "web-1");
    assert_eq!(pod["spec"]["subdomain"], "web");
    assert_eq!(
        pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        "web-1"
    );
    assert_eq!(
        pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        "1"
    );

    // A deleted pod comes back under its name, as a new pod.
    c.kubectl_ok(&["delete", "pod", "web-1", "-n", &ns]);
    let again = wait_running(c, &ns, &["web-0", "web-1", "web-2"]);
    assert_ne!(again[1], uids[1], "web-1 is a new pod");
    assert_eq!(again[0], uids[0]);

    c.kubectl_ok(&["scale", "statefulset/web", "--replicas=1", "-n", &ns]);
    wait_running(c, &ns, &["web-0"]);
    let deleted: Vec<String> = events(c, &ns)
        .iter()
        .filter(|m| m.starts_with("delete Pod"))
        .filter_map(|m| m.split_whitespace().nth(2).map(str::to_string))
        .collect();
    assert_eq!(
        deleted,
        ["web-2", "web-1"],
        "scale-down goes from the highest ordinal"
    );
    c.kubectl_ok(&["scale", "statefulset/web", "--replicas=2", "-n", &ns]);
    rollout_status(c, &ns);
    let before = wait_running(c, &ns, &["web-0", "web-1"]);

    // A new template replaces the pods, highest ordinal first.
    c.kubectl_ok(&["set", "env", "statefulset/web", "TICK_MS=250", "-n", &ns]);
    rollout_status(c, &ns);
    let after = wait_running(c, &ns, &["web-0", "web-1"]);
    assert!(
        before.iter().zip(&after).all(|(b, a)| a != b),
        "every pod replaced"
    );
    let pod = c.get_json(&ns, "pod/web-0");
    assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "250");
    let status = c.get_json(&ns, "statefulset/web")["status"].clone();
    assert_eq!(
        status["currentRevision"], status["updateRevision"],
        "{status}"
    );
    assert_eq!(status["updatedReplicas"], 2, "{status}");
    let history = c.kubectl_ok(&["rollout", "history", "statefulset/web", "-n", &ns]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    c.kubectl_ok(&["rollout", "undo", "statefulset/web", "-n", &ns]);
    rollout_status(c, &ns);
    wait_running(c, &ns, &["web-0", "web-1"]);
    let pod = c.get_json(&ns, "pod/web-1");
    assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "500");
    let revisions = c.get_json(&ns, "controllerrevisions")["items"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(revisions, 2, "the first revision is reused, renumbered");
}

fn each_ordinal_has_its_own_claim_that_outlives_pod_and_scale_down(ds: Datastore) {
    let (c, ns) = setup(ds, "sts-claims");
    let claims = json!([{
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Mi"}},
        },
    }]);
    c.apply(&stateful_set(&ns, 2, "Parallel", claims));
    let claim_uid = |name: &str| {
        c.get_json(&ns, &format!("pvc/{name}"))["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let both = eventually(ROLLOUT, || {
        let listed = c.get_json(&ns, "pvc")["items"]
            .as_array()
            .map_or(0, Vec::len);
        let pods = pods(c, &ns).len();
        (listed == 2 && pods == 2).then_some(())
    });
    assert!(
        both.is_some(),
        "{}",
        c.kubectl_ok(&["get", "pods,pvc", "-n", &ns])
    );
    let pod = c.get_json(&ns, "pod/web-1");
    let volume = pod["spec"]["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "data"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        volume["persistentVolumeClaim"]["claimName"], "data-web-1",
        "{pod}"
    );
    let first = claim_uid("data-web-1");
    let labels = &c.get_json(&ns, "pvc/data-web-1")["metadata"]["labels"];
    assert_eq!(labels["app"], "web");

    // The pod is made again with the same claim; scaling down keeps it.
    c.kubectl_ok(&["delete", "pod", "web-1", "-n", &ns, "--wait=false"]);
    let back = eventually(ROLLOUT, || {
        let p = pod_if_any(c, &ns, "web-1")?;
        (p["metadata"]["deletionTimestamp"].is_null()
            && p["metadata"]["uid"] != pod["metadata"]["uid"]
            && !p["metadata"]["uid"].is_null())
        .then_some(p)
    })
    .unwrap_or_else(|| {
        panic!(
            "web-1 not made again: {}",
            c.kubectl_ok(&["get", "pods", "-n", &ns])
        )
    });
    assert_eq!(back["spec"]["volumes"], pod["spec"]["volumes"]);
    assert_eq!(claim_uid("data-web-1"), first);
    c.kubectl_ok(&["scale", "statefulset/web", "--replicas=1", "-n", &ns]);
    let gone = eventually(ROLLOUT, || {
        pods(c, &ns).iter().all(|p| p.0 != "web-1").then_some(())
    });
    assert!(
        gone.is_some(),
        "{}",
        c.kubectl_ok(&["get", "pods", "-n", &ns])
    );
    assert_eq!(
        claim_uid("data-web-1"),
        first,
        "the claim stays after scale-down"
    );
    c.kubectl_ok(&["scale", "statefulset/web", "--replicas=2", "-n", &ns]);
    let back = eventually(ROLLOUT, || pod_if_any(c, &ns, "web-1"));
    assert!(back.is_some());
    assert_eq!(
        claim_uid("data-web-1"),
        first,
        "scaled up again onto the same claim"
    );
}

#[test]
fn invalid_stateful_sets_are_rejected_naming_the_field() {
    let (c, ns) = setup(Datastore::Sqlite, "sts-invalid");
    let mut bad: Value =
        serde_json::from_str(&stateful_set(&ns, 1, "OrderedReady", json!([]))).unwrap_or_default();
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &bad.to_string());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spec.template.metadata.labels"), "{stderr}");
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "web"});
    bad["spec"]["replicas"] = json!(-1);
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &bad.to_string());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spec.replicas"), "{stderr}");
}
