//! A node dies: the node lifecycle controller marks it Unknown and taints
//! it unreachable, its pods are evicted once their default toleration
//! (5 s) runs out, and the Deployment's replacements run on the surviving
//! node, with the server's edge defaults (8 s grace period).

mod common;

use std::time::{Duration, Instant};

use common::node::example_image;
use common::{Cluster, eventually};
use serde_json::{Value, json};

/// How long a node takes to be Unknown and its pods to be replaced; the
/// defaults make it about 14 s.
const FAILOVER: Duration = Duration::from_secs(30);
const ROLLOUT: Duration = Duration::from_secs(60);

/// A ticker pod template labelled `app: <app>`.
fn ticker(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [{
            "name": "ticker",
            "image": example_image("wasip2", "ticker"),
            "env": [{"name": "TICK_MS", "value": "500"}],
        }]},
    })
}

fn deployment(ns: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ticker", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "ticker"}},
            "template": ticker("ticker"),
        },
    })
}

/// The pods of `ns` as `(name, node, phase, terminating)`.
fn pods(c: &Cluster, ns: &str) -> Vec<(String, String, String, bool)> {
    let list = c.get(&format!("/api/v1/namespaces/{ns}/pods"));
    list.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                text(&p["metadata"]["name"]),
                text(&p["spec"]["nodeName"]),
                text(&p["status"]["phase"]),
                !p["metadata"]["deletionTimestamp"].is_null(),
            )
        })
        .collect()
}

/// Names of the Running, not terminating pods on `node`.
fn running_on(c: &Cluster, ns: &str, node: &str) -> Vec<String> {
    pods(c, ns)
        .into_iter()
        .filter(|(_, n, phase, terminating)| n == node && phase == "Running" && !terminating)
        .map(|(name, ..)| name)
        .collect()
}

fn ready_status(node: &Value) -> String {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn has_taint(node: &Value, key: &str, effect: &str) -> bool {
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["key"] == key && t["effect"] == effect && !t["timeAdded"].is_null())
}

#[test]
fn a_killed_nodes_pods_are_replaced_on_the_surviving_node() {
    let c = Cluster::start();
    let mut a = c.start_node("node-a");
    let _b = c.start_node("node-b");
    let ns = "failover";
    c.create_namespace(ns);

    // Everything lands on node-a while node-b is cordoned.
    c.kubectl_ok(&["cordon", "node-b"]);
    c.post(
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        &deployment(ns, 2),
    )
    .expect(201);
    let first = eventually(ROLLOUT, || {
        let on_a = running_on(&c, ns, "node-a");
        (on_a.len() == 2).then_some(on_a)
    })
    .unwrap_or_else(|| panic!("2 pods never ran on node-a: {:?}", pods(&c, ns)));
    let pod = c.get(&format!("/api/v1/namespaces/{ns}/pods/{}", first[0]));
    let tolerations = pod.expect(200)["spec"]["tolerations"].clone();
    assert!(
        tolerations.as_array().is_some_and(|t| t.iter().any(|t| {
            t["key"] == "node.kubernetes.io/unreachable"
                && t["effect"] == "NoExecute"
                && t["tolerationSeconds"] == 5
        })),
        "pods get the default tolerations: {tolerations}"
    );
    c.kubectl_ok(&["uncordon", "node-b"]);

    let killed = Instant::now();
    a.kill9();

    let node = eventually(FAILOVER, || {
        let node = c.get("/api/v1/nodes/node-a").body;
        (ready_status(&node) == "Unknown"
            && has_taint(&node, "node.kubernetes.io/unreachable", "NoExecute")
            && has_taint(&node, "node.kubernetes.io/unreachable", "NoSchedule"))
        .then_some(node)
    })
    .unwrap_or_else(|| {
        let node = c.get("/api/v1/nodes/node-a").body;
        panic!("node-a was not Unknown and tainted within {FAILOVER:?}: {node:#}")
    });
    eprintln!("kill -> node-a Unknown and tainted: {:?}", killed.elapsed());
    let conditions = node["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conditions.iter().all(|c| c["status"] == "Unknown"),
        "every condition is Unknown: {conditions:#?}"
    );
    assert!(
        conditions.iter().any(|c| c["type"] == "Ready"
            && c["reason"] == "NodeStatusUnknown"
            && c["message"] == "Kubelet stopped posting node status."),
        "{conditions:#?}"
    );
    let get = c.kubectl_ok(&["get", "node", "node-a"]);
    assert!(
        get.lines().nth(1).is_some_and(|l| l.contains("NotReady")),
        "{get}"
    );
    let describe = c.kubectl_ok(&["describe", "node", "node-a"]);
    for expected in [
        "node.kubernetes.io/unreachable:NoExecute",
        "node.kubernetes.io/unreachable:NoSchedule",
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    ] {
        assert!(describe.contains(expected), "{expected} in:\n{describe}");
    }

    let replacements = eventually(FAILOVER.saturating_sub(killed.elapsed()), || {
        let on_b = running_on(&c, ns, "node-b");
        (on_b.len() == 2).then_some(on_b)
    })
    .unwrap_or_else(|| {
        panic!(
            "2 replacements were not Running on node-b within {FAILOVER:?} of the kill: {:?}",
            pods(&c, ns)
        )
    });
    eprintln!(
        "kill -> 2 replacements Running on node-b: {:?}",
        killed.elapsed()
    );
    for name in &first {
        assert!(!replacements.contains(name));
    }
    // The dead node's pods are terminating or gone; none still counts.
    let left = pods(&c, ns);
    assert!(
        left.iter()
            .filter(|(_, node, ..)| node == "node-a")
            .all(|(.., terminating)| *terminating),
        "{left:?}"
    );
    let evictions = || {
        let events = c.get(&format!("/api/v1/namespaces/{ns}/events")).body;
        events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["reason"] == "TaintManagerEviction")
            .count()
    };
    let recorded = eventually(Duration::from_secs(10), || (evictions() >= 2).then_some(()));
    assert!(recorded.is_some(), "eviction events: {}", evictions());

    // No node confirms their end: they are force-deleted once their
    // deletionTimestamp has passed and the node has been Unknown for their
    // grace period (5 s).
    let gone = eventually(FAILOVER, || {
        pods(&c, ns)
            .iter()
            .all(|(_, node, ..)| node != "node-a")
            .then_some(())
    });
    assert!(gone.is_some(), "{:?}", pods(&c, ns));
}

#[test]
fn a_stateful_pod_of_a_killed_node_comes_back_elsewhere_with_its_claim() {
    let c = Cluster::start();
    let mut a = c.start_node("node-a");
    let _b = c.start_node("node-b");
    let ns = "stateful-failover";
    c.create_namespace(ns);
    // A volume both nodes reach (as network storage would be), bound by
    // the claim the StatefulSet makes for ordinal 0.
    let dir = tempfile::tempdir().expect("a temporary directory");
    c.post(
        "/api/v1/persistentvolumes",
        &json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": format!("{ns}-pv")},
            "spec": {
                "capacity": {"storage": "1Mi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": dir.path().to_string_lossy()},
            },
        }),
    )
    .expect(201);
    c.kubectl_ok(&["cordon", "node-b"]);
    c.post(
        &format!("/apis/apps/v1/namespaces/{ns}/statefulsets"),
        &json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": ns},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": ticker("db"),
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "",
                        "resources": {"requests": {"storage": "1Mi"}},
                    },
                }],
            },
        }),
    )
    .expect(201);
    eventually(ROLLOUT, || {
        (running_on(&c, ns, "node-a") == ["db-0"]).then_some(())
    })
    .unwrap_or_else(|| panic!("db-0 never ran on node-a: {:?}", pods(&c, ns)));
    let claim = |c: &Cluster| {
        c.get(&format!(
            "/api/v1/namespaces/{ns}/persistentvolumeclaims/data-db-0"
        ))
        .body
    };
    let before = claim(&c);
    assert_eq!(before["spec"]["volumeName"], format!("{ns}-pv"), "{before}");
    c.kubectl_ok(&["uncordon", "node-b"]);

    let killed = Instant::now();
    a.kill9();
    eventually(FAILOVER * 2, || {
        (running_on(&c, ns, "node-b") == ["db-0"]).then_some(())
    })
    .unwrap_or_else(|| panic!("db-0 did not come back on node-b: {:?}", pods(&c, ns)));
    eprintln!("kill -> db-0 Running on node-b: {:?}", killed.elapsed());
    let after = claim(&c);
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "the same claim"
    );
    assert_eq!(after["spec"]["volumeName"], before["spec"]["volumeName"]);
    let db0: Vec<_> = pods(&c, ns).into_iter().filter(|p| p.0 == "db-0").collect();
    assert_eq!(db0.len(), 1, "never two pods of one identity: {db0:?}");
}
