//! Persistent volumes end to end: the default `local-path` StorageClass
//! provisions a directory on the node of a claim's first pod, the data
//! outlives the pod, and hand-made volumes bind to matching claims.

mod common;

use std::time::Duration;

use common::Cluster;
use common::node::example_image;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

fn claim(name: &str, extra: Value) -> String {
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "64Mi"}},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    })
    .to_string()
}

/// A pod running the `program` example with claim `claim` at /data.
fn pod_with_claim(name: &str, program: &str, claim: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
            "containers": [{
                "name": program,
                "image": example_image("wasip2", program),
                "env": [{"name": "SHARED_DIR", "value": "/data"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }],
        },
    })
    .to_string()
}

fn get(c: &Cluster, path: &str) -> Value {
    let resp = c.get(path);
    assert_eq!(resp.status, 200, "GET {path}: {}", resp.body);
    resp.body
}

/// Waits until the logs of pod `name` contain `text`.
fn wait_logs(c: &Cluster, name: &str, text: &str) -> String {
    common::eventually(TIMEOUT, || {
        let out = c.kubectl(&["logs", name, "-n", "default"]);
        let logs = String::from_utf8_lossy(&out.stdout).into_owned();
        logs.contains(text).then_some(logs)
    })
    .unwrap_or_else(|| {
        let pod = c
            .get(&format!("/api/v1/namespaces/default/pods/{name}"))
            .body;
        panic!(
            "{name} never logged {text:?}; pod status: {}",
            pod["status"]
        )
    })
}

#[test]
fn claim_without_class_is_provisioned_on_its_pods_node_and_outlives_the_pod() {
    let c = Cluster::start();
    let node = c.start_node("disk-node");
    c.apply(&claim("data", json!({})));
    c.apply(&pod_with_claim("writer", "writer", "data"));
    wait_logs(&c, "writer", "wrote line 3");

    let pvc = get(&c, "/api/v1/namespaces/default/persistentvolumeclaims/data");
    assert_eq!(pvc["spec"]["storageClassName"], "local-path", "{pvc}");
    assert_eq!(pvc["status"]["phase"], "Bound", "{pvc}");
    assert_eq!(pvc["status"]["capacity"]["storage"], "64Mi", "{pvc}");
    let uid = pvc["metadata"]["uid"].as_str().expect("a uid").to_string();
    let volume = format!("pvc-{uid}");
    assert_eq!(pvc["spec"]["volumeName"], volume.as_str(), "{pvc}");
    let pv = get(&c, &format!("/api/v1/persistentvolumes/{volume}"));
    assert_eq!(pv["status"]["phase"], "Bound", "{pv}");
    assert_eq!(
        pv["spec"]["persistentVolumeReclaimPolicy"], "Delete",
        "{pv}"
    );
    assert_eq!(pv["spec"]["claimRef"]["uid"], uid.as_str(), "{pv}");
    let term = &pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0];
    assert_eq!(
        term["matchExpressions"][0]["values"],
        json!([node.name]),
        "{pv}"
    );
    let dir = node
        .data_dir()
        .join("volumes")
        .join(pv["spec"]["local"]["path"].as_str().expect("a local path"));
    assert!(
        dir.join("lines.txt").is_file(),
        "{} holds no lines.txt",
        dir.display()
    );

    c.kubectl_ok(&["delete", "pod", "writer", "-n", "default", "--wait=true"]);
    c.apply(&pod_with_claim("reader", "reader", "data"));
    wait_logs(&c, "reader", "read: line 3 from writer");
    let pod = get(&c, "/api/v1/namespaces/default/pods/reader");
    assert_eq!(pod["spec"]["nodeName"], node.name.as_str(), "{pod}");
}

#[test]
fn hand_made_volume_binds_to_a_matching_claim() {
    let c = Cluster::start();
    let class = c.kubectl_ok(&["get", "storageclass"]);
    assert!(
        class.lines().any(|l| l.starts_with("local-path (default)")
            && l.contains("wasmpod.io/local-path")
            && l.contains("WaitForFirstConsumer")),
        "{class}"
    );
    let refused = c.post(
        "/apis/storage.k8s.io/v1/storageclasses",
        &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "no-provisioner"}}),
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.to_string().contains("provisioner"),
        "{}",
        refused.body
    );

    let dir = c.scratch_dir("static-pv");
    let too_small = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "too-small"},
        "spec": {
            "capacity": {"storage": "1Mi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": dir.display().to_string()},
        },
    });
    let mut fits = too_small.clone();
    fits["metadata"]["name"] = json!("fits");
    fits["spec"]["capacity"]["storage"] = json!("1Gi");
    c.apply(&too_small.to_string());
    c.apply(&fits.to_string());
    c.apply(&claim("static", json!({"storageClassName": ""})));

    let bound = common::eventually(TIMEOUT, || {
        let out = c.kubectl_ok(&["get", "pv,pvc", "-n", "default"]);
        let pvc_bound = out
            .lines()
            .any(|l| l.starts_with("persistentvolumeclaim/static") && l.contains("Bound"));
        let pv_bound = out.lines().any(|l| {
            l.starts_with("persistentvolume/fits")
                && l.contains("Bound")
                && l.contains("default/static")
        });
        (pvc_bound && pv_bound).then_some(out)
    });
    let out = c.kubectl_ok(&["get", "pv,pvc", "-n", "default"]);
    assert!(bound.is_some(), "the claim was not bound to `fits`:\n{out}");
    let pvc = get(
        &c,
        "/api/v1/namespaces/default/persistentvolumeclaims/static",
    );
    assert_eq!(pvc["spec"]["volumeName"], "fits", "{pvc}");
    let available = common::eventually(TIMEOUT, || {
        let pv = get(&c, "/api/v1/persistentvolumes/too-small");
        (pv["status"]["phase"] == "Available").then_some(pv)
    });
    assert!(
        available.is_some(),
        "{}",
        get(&c, "/api/v1/persistentvolumes/too-small")
    );

    // Retain: the volume outlives its claim as Released.
    c.kubectl_ok(&["delete", "pvc", "static", "-n", "default"]);
    let released = common::eventually(TIMEOUT, || {
        let pv = get(&c, "/api/v1/persistentvolumes/fits");
        (pv["status"]["phase"] == "Released").then_some(pv)
    });
    assert!(
        released.is_some(),
        "{}",
        get(&c, "/api/v1/persistentvolumes/fits")
    );

    // A pod naming a claim that does not exist is not scheduled.
    c.apply(&pod_with_claim("orphan", "reader", "absent"));
    let message = common::eventually(TIMEOUT, || {
        let pod = get(&c, "/api/v1/namespaces/default/pods/orphan");
        pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
            .and_then(|c| c["message"].as_str().map(str::to_string))
    });
    let message = message.expect("PodScheduled=False");
    assert!(
        message.contains("persistentvolumeclaim \"absent\" not found"),
        "{message}"
    );
}
