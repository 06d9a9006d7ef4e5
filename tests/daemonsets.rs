//! DaemonSets end to end: fake nodes (Node objects and Leases created
//! through the API; nothing runs on them, so this test marks pods Ready as
//! a node would), a DaemonSet applied with kubectl, one pod per eligible
//! node bound by the scheduler, nodes joining later, taints, deletion, and
//! a rolling update followed by `kubectl rollout status`. Placement runs on
//! SQLite and on Postgres.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::datastore::Datastore;
use common::fake_node::FakeNodes;
use common::{Cluster, ClusterOptions, eventually};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

fn daemon_set(name: &str, image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: agent
        image: {image}
"#
    )
}

/// The DaemonSet's live pods, by the node they are bound to (unbound
/// pods under "").
fn pods_by_node(c: &Cluster, ns: &str, app: &str) -> BTreeMap<String, Vec<Value>> {
    let list = c.get(&format!(
        "/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}"
    ));
    let mut by_node: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for pod in list.expect(200)["items"].as_array().into_iter().flatten() {
        if !pod["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let node = pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        by_node.entry(node).or_default().push(pod.clone());
    }
    by_node
}

/// Waits until the DaemonSet's pods are exactly one on each of `nodes`.
#[track_caller]
fn wait_one_per_node(c: &Cluster, ns: &str, app: &str, nodes: &[&str]) {
    let ok = eventually(TIMEOUT, || {
        let by_node = pods_by_node(c, ns, app);
        let placed: Vec<&str> = by_node.keys().map(String::as_str).collect();
        (placed == nodes && by_node.values().all(|p| p.len() == 1)).then_some(())
    });
    if ok.is_none() {
        panic!(
            "expected one pod on each of {nodes:?}, have {:?}\nserver log:\n{}",
            pods_by_node(c, ns, app)
                .iter()
                .map(|(n, p)| (n.clone(), p.len()))
                .collect::<Vec<_>>(),
            c.server_log_tail(40)
        );
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Acts as the nodes' kubelets once: every bound pod of `app` that is not
/// Ready is reported Running and Ready. Returns how many nodes have a
/// Ready pod.
fn report_ready(c: &Cluster, ns: &str, app: &str) -> usize {
    let mut ready_nodes = 0;
    for (node, pods) in pods_by_node(c, ns, app) {
        if node.is_empty() {
            continue;
        }
        if pods.iter().any(is_ready) {
            ready_nodes += 1;
        }
        for pod in pods.iter().filter(|p| !is_ready(p)) {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            // The pod may be gone meanwhile; the next round sees that.
            c.patch(
                &format!("/api/v1/namespaces/{ns}/pods/{name}/status"),
                "application/merge-patch+json",
                &json!({"status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}]}}),
            );
        }
    }
    ready_nodes
}

on_each_datastore!(a_daemon_set_runs_one_pod_per_eligible_node);

fn a_daemon_set_runs_one_pod_per_eligible_node(ds: Datastore) {
    // The DaemonSet covers every node: a cluster of its own.
    let c = ds.start(ClusterOptions::with_silent_nodes());
    let nodes = FakeNodes::new(&c);
    for name in ["n1", "n2", "n3"] {
        nodes.add(&c, name, json!({}), json!([]));
    }
    nodes.add(
        &c,
        "tainted",
        json!({}),
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    );
    c.apply(&daemon_set("agent", "file:///agent.wasm"));
    wait_one_per_node(&c, "default", "agent", &["n1", "n2", "n3"]);

    let pod = &pods_by_node(&c, "default", "agent")["n1"][0];
    let owner = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "DaemonSet");
    assert_eq!(owner["name"], "agent");
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    assert!(pod["metadata"]["labels"]["controller-revision-hash"].is_string());
    let terms = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    assert_eq!(
        terms,
        &json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])
    );

    // A node joining later gets a pod.
    nodes.add(&c, "n4", json!({}), json!([]));
    wait_one_per_node(&c, "default", "agent", &["n1", "n2", "n3", "n4"]);
    let status = eventually(TIMEOUT, || {
        let ds = c.get("/apis/apps/v1/namespaces/default/daemonsets/agent");
        let status = ds.expect(200)["status"].clone();
        (status["currentNumberScheduled"] == 4).then_some(status)
    })
    .expect("the status counts four pods");
    assert_eq!(status["desiredNumberScheduled"], 4);
    assert_eq!(status["numberMisscheduled"], 0);
    assert_eq!(status["updatedNumberScheduled"], 4);

    // Tainting a node with NoExecute evicts its daemon pod.
    c.patch(
        "/api/v1/nodes/n4",
        "application/merge-patch+json",
        &json!({"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}}),
    )
    .expect(200);
    wait_one_per_node(&c, "default", "agent", &["n1", "n2", "n3"]);

    // A failed pod is replaced.
    let failed = pods_by_node(&c, "default", "agent")["n2"][0]["metadata"]["name"]
        .as_str()
        .map(str::to_string)
        .expect("a pod on n2");
    c.patch(
        &format!("/api/v1/namespaces/default/pods/{failed}/status"),
        "application/merge-patch+json",
        &json!({"status": {"phase": "Failed"}}),
    )
    .expect(200);
    eventually(TIMEOUT, || {
        let by_node = pods_by_node(&c, "default", "agent");
        let on_n2 = by_node.get("n2")?;
        (on_n2.len() == 1 && on_n2[0]["metadata"]["name"] != failed.as_str()).then_some(())
    })
    .expect("the failed pod on n2 was replaced");

    // Deleting the DaemonSet deletes its pods (through the garbage
    // collector, which follows the ownerReferences).
    c.kubectl_ok(&["delete", "ds", "agent"]);
    eventually(TIMEOUT, || {
        pods_by_node(&c, "default", "agent")
            .is_empty()
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the DaemonSet's pods were not deleted: {:?}",
            pods_by_node(&c, "default", "agent")
                .keys()
                .collect::<Vec<_>>()
        )
    });
}

/// Stops the kubelet loop also when an assertion fails.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn rollout_status_returns_once_every_node_runs_the_new_template() {
    let c = Cluster::start_with_options(ClusterOptions::with_silent_nodes());
    let nodes = FakeNodes::new(&c);
    for name in ["n1", "n2", "n3"] {
        nodes.add(&c, name, json!({}), json!([]));
    }
    c.apply(&daemon_set("agent", "file:///v1.wasm"));
    wait_one_per_node(&c, "default", "agent", &["n1", "n2", "n3"]);

    let done = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    let fewest_ready = AtomicUsize::new(usize::MAX);
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&done);
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let ready = report_ready(&c, "default", "agent");
                fewest_ready.fetch_min(ready, Ordering::Relaxed);
                rounds.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let first = c.kubectl_ok(&["rollout", "status", "ds/agent", "--timeout=50s"]);
        assert!(first.contains("successfully rolled out"), "{first}");
        // Forget what the first rollout looked like, once a whole round
        // has seen every pod Ready.
        let seen = rounds.load(Ordering::Relaxed);
        eventually(TIMEOUT, || {
            (rounds.load(Ordering::Relaxed) >= seen + 2).then_some(())
        })
        .expect("the kubelet loop runs");
        fewest_ready.store(usize::MAX, Ordering::Relaxed);

        c.kubectl_ok(&["set", "image", "ds/agent", "agent=file:///v2.wasm"]);
        let out = c.kubectl_ok(&["rollout", "status", "ds/agent", "--timeout=50s"]);
        done.store(true, Ordering::Relaxed);
        assert!(out.contains("successfully rolled out"), "{out}");
    });

    let by_node = pods_by_node(&c, "default", "agent");
    assert_eq!(by_node.len(), 3, "{by_node:?}");
    for pods in by_node.values() {
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0]["spec"]["containers"][0]["image"], "file:///v2.wasm");
    }
    // maxUnavailable 1: at most one of three nodes was without a Ready
    // pod at any time the kubelet loop looked.
    assert!(fewest_ready.load(Ordering::Relaxed) >= 2);
}

#[test]
fn a_selector_that_does_not_match_the_template_is_refused() {
    let (c, ns) = common::namespace("ds-invalid");
    let manifest = daemon_set("agent", "file:///a.wasm")
        .replace("matchLabels: {app: agent}", "matchLabels: {app: other}");
    let err = c.kubectl_err_stdin(&["apply", "-n", &ns, "-f", "-"], &manifest);
    assert!(err.contains("spec.template.metadata.labels"), "{err}");
}
