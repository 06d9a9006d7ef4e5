//! API behaviour that kubectl and controllers rely on, over raw HTTP:
//! the pod `binding` and `status` subresources, `scale` on every scalable
//! kind, graceful pod deletion, deletecollection, paging with
//! limit/continue, and selector-filtered watches.

mod common;

use std::time::Duration;

use common::{Cluster, namespace, unique};
use serde_json::{Value, json};

fn create_pod(c: &Cluster, ns: &str, name: &str, labels: Value) -> Value {
    c.post(
        &format!("/api/v1/namespaces/{ns}/pods"),
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "file:///app.wasm"}]},
        }),
    )
    .expect(201)
    .clone()
}

fn create_node(c: &Cluster) -> String {
    let name = unique("node");
    c.post(
        "/api/v1/nodes",
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}),
    )
    .expect(201);
    name
}

fn bind(c: &Cluster, ns: &str, pod: &str, node: &str) -> common::http::ApiResponse {
    c.post(
        &format!("/api/v1/namespaces/{ns}/pods/{pod}/binding"),
        &json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }),
    )
}

#[test]
fn binding_assigns_a_pod_to_a_node_once() {
    let (c, ns) = namespace("binding");
    let node = create_node(c);
    create_pod(c, &ns, "web", json!({}));
    create_pod(c, &ns, "other", json!({}));
    bind(c, &ns, "web", &node).expect(201);
    let pod = c.get(&format!("/api/v1/namespaces/{ns}/pods/web"));
    assert_eq!(pod.expect(200)["spec"]["nodeName"], node.as_str());
    let on_node = c.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        &ns,
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "name",
    ]);
    assert_eq!(on_node.trim(), "pod/web");
    let wide = c.kubectl_ok(&["get", "pod", "web", "-n", &ns, "-o", "wide"]);
    assert!(
        wide.lines().nth(1).is_some_and(|l| l.contains(&node)),
        "{wide}"
    );
    let again = bind(c, &ns, "web", &create_node(c));
    again.expect_status(409, "Conflict");
    let pod = c.get(&format!("/api/v1/namespaces/{ns}/pods/web"));
    assert_eq!(
        pod.expect(200)["spec"]["nodeName"],
        node.as_str(),
        "a bound pod stays on its node"
    );
}

#[test]
fn the_status_subresource_changes_only_status_and_the_main_resource_only_spec() {
    let (c, ns) = namespace("status");
    let created = create_pod(c, &ns, "web", json!({"app": "web"}));
    let path = format!("/api/v1/namespaces/{ns}/pods/web");
    let patch = json!({
        "spec": {"activeDeadlineSeconds": 5},
        "status": {"phase": "Running", "podIP": "10.42.0.9"},
    });
    let after = c
        .patch(
            &format!("{path}/status"),
            "application/merge-patch+json",
            &patch,
        )
        .expect(200)
        .clone();
    assert_eq!(after["status"]["phase"], "Running");
    assert_eq!(after["status"]["podIP"], "10.42.0.9");
    assert_eq!(after["spec"], created["spec"], "status writes ignore spec");

    let main = c
        .patch(
            &path,
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"tier": "front"}}, "status": {"phase": "Failed"}}),
        )
        .expect(200)
        .clone();
    assert_eq!(main["metadata"]["labels"]["tier"], "front");
    assert_eq!(
        main["status"]["phase"], "Running",
        "writes to the main resource ignore status"
    );
    let table = c.kubectl_ok(&["get", "pod", "web", "-n", &ns]);
    assert!(
        table.lines().nth(1).is_some_and(|l| l.contains("Running")),
        "{table}"
    );
    let running = c.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        &ns,
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name",
    ]);
    assert_eq!(running.trim(), "pod/web");
}

#[test]
fn scale_reads_and_writes_replicas_of_every_scalable_kind() {
    let (c, ns) = namespace("scale-sub");
    let template = json!({
        "metadata": {"labels": {"app": "s"}},
        "spec": {"containers": [{"name": "app", "image": "file:///app.wasm"}]},
    });
    let kinds = [
        (
            "/apis/apps/v1",
            "deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "s"}}, "template": template}}),
        ),
        (
            "/apis/apps/v1",
            "replicasets",
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "s"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "s"}}, "template": template}}),
        ),
        (
            "/apis/apps/v1",
            "statefulsets",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
                   "spec": {"replicas": 1, "serviceName": "s", "selector": {"matchLabels": {"app": "s"}},
                            "template": template}}),
        ),
        (
            "/api/v1",
            "replicationcontrollers",
            json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "s"},
                   "spec": {"replicas": 1, "selector": {"app": "s"}, "template": template}}),
        ),
    ];
    for (prefix, plural, object) in kinds {
        let base = format!("{prefix}/namespaces/{ns}/{plural}");
        c.post(&base, &object).expect(201);
        let scale = c.get(&format!("{base}/s/scale")).expect(200).clone();
        assert_eq!(scale["kind"], "Scale", "{plural}: {scale}");
        assert_eq!(scale["apiVersion"], "autoscaling/v1", "{plural}: {scale}");
        assert_eq!(scale["spec"]["replicas"], 1, "{plural}: {scale}");
        assert!(
            scale["status"]["selector"]
                .as_str()
                .is_some_and(|s| s.contains("app=s")),
            "{plural}: the Scale carries the selector: {scale}"
        );
        // Without a resourceVersion the write is unconditional (the
        // object's controller may write its status meanwhile); with the
        // one read before this write it is stale.
        let mut update = scale.clone();
        update["spec"]["replicas"] = json!(4);
        update["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
        c.put(&format!("{base}/s/scale"), &update).expect(200);
        let object = c.get(&format!("{base}/s")).expect(200).clone();
        assert_eq!(object["spec"]["replicas"], 4, "{plural}: {object}");
        let mut stale = scale.clone();
        stale["spec"]["replicas"] = json!(5);
        c.put(&format!("{base}/s/scale"), &stale)
            .expect_status(409, "Conflict");
    }
}

#[test]
fn deleting_a_pod_on_a_node_waits_for_its_grace_period() {
    let (c, ns) = namespace("graceful");
    let node = create_node(c);
    create_pod(c, &ns, "bound", json!({}));
    bind(c, &ns, "bound", &node).expect(201);
    let path = format!("/api/v1/namespaces/{ns}/pods/bound");
    let deleted = c.delete(&path).expect(200).clone();
    assert!(
        deleted["metadata"]["deletionTimestamp"].is_string(),
        "a pod on a node is marked for deletion, not removed: {deleted}"
    );
    assert_eq!(
        deleted["metadata"]["deletionGracePeriodSeconds"], 30,
        "{deleted}"
    );
    c.get(&path).expect(200);
    // Its node writes the pod's status while stopping it: the pod stays
    // until the node (or a forced delete) removes it.
    c.patch(
        &format!("{path}/status"),
        "application/merge-patch+json",
        &json!({"status": {"phase": "Running"}}),
    )
    .expect(200);
    c.get(&path).expect(200);
    c.send(
        reqwest::Method::DELETE,
        &path,
        Some("application/json"),
        Some(
            json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})
                .to_string()
                .into_bytes(),
        ),
    )
    .expect_success();
    c.get(&path).expect_status(404, "NotFound");

    create_pod(c, &ns, "unbound", json!({}));
    c.delete(&format!("/api/v1/namespaces/{ns}/pods/unbound"))
        .expect_success();
    c.get(&format!("/api/v1/namespaces/{ns}/pods/unbound"))
        .expect_status(404, "NotFound");
}

#[test]
fn deletecollection_removes_only_the_selected_objects() {
    let (c, ns) = namespace("deletecollection");
    for (name, group) in [("a", "x"), ("b", "x"), ("c", "y")] {
        c.post(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "labels": {"group": group}}}),
        )
        .expect(201);
    }
    c.delete(&format!(
        "/api/v1/namespaces/{ns}/configmaps?labelSelector=group%3Dx"
    ))
    .expect(200);
    let left = c
        .get(&format!("/api/v1/namespaces/{ns}/configmaps"))
        .expect(200)
        .clone();
    let names: Vec<&str> = left["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["c"]);
}

#[test]
fn deletecollection_deletes_objects_that_change_while_it_runs() {
    let (c, ns) = namespace("deletecollection-race");
    const COUNT: usize = 150;
    for i in 0..COUNT {
        c.create_configmap(&ns, &format!("cm-{i}"), json!({"n": "0"}));
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Writes to the objects from the end of the list backwards, as a
        // node posting pod status would, while the collection is deleted.
        scope.spawn(|| {
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                for i in (0..COUNT).rev().step_by(7) {
                    let _ = c.patch(
                        &format!("/api/v1/namespaces/{ns}/configmaps/cm-{i}"),
                        "application/merge-patch+json",
                        &json!({"data": {"n": round.to_string()}}),
                    );
                }
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        c.delete(&format!("/api/v1/namespaces/{ns}/configmaps"))
            .expect(200);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let left = c
        .get(&format!("/api/v1/namespaces/{ns}/configmaps"))
        .expect(200)
        .clone();
    assert_eq!(
        left["items"].as_array().map(Vec::len),
        Some(0),
        "every object listed is deleted, changed or not: {left}"
    );
}

#[test]
fn lists_page_with_limit_and_continue() {
    let (c, ns) = namespace("paging");
    for i in 0..7 {
        c.create_configmap(&ns, &format!("cm-{i}"), json!({}));
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let mut path = format!("/api/v1/namespaces/{ns}/configmaps?limit=3");
        if !token.is_empty() {
            path.push_str(&format!("&continue={token}"));
        }
        let page = c.get(&path).expect(200).clone();
        pages += 1;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 3, "a page has at most limit items: {page}");
        seen.extend(
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(String::from)),
        );
        token = page["metadata"]["continue"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if token.is_empty() || pages > 5 {
            break;
        }
        // Writes between pages do not shift the pages already promised.
        if pages == 1 {
            c.create_configmap(&ns, "cm-late", json!({}));
        }
    }
    assert_eq!(pages, 3, "7 objects in pages of 3");
    let expected: Vec<String> = (0..7).map(|i| format!("cm-{i}")).collect();
    assert_eq!(
        seen, expected,
        "every object once, in name order, as of the first page"
    );
    let chunked = c.kubectl_ok(&[
        "get",
        "configmaps",
        "-n",
        &ns,
        "--chunk-size=2",
        "-o",
        "name",
    ]);
    assert_eq!(chunked.lines().count(), 8, "{chunked}");
}

#[test]
fn a_label_selected_watch_sees_objects_enter_and_leave_the_selection() {
    let (c, ns) = namespace("watch-selector");
    let list = c
        .get(&format!("/api/v1/namespaces/{ns}/configmaps"))
        .expect(200)
        .clone();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut watch = c
        .watch(&format!(
            "/api/v1/namespaces/{ns}/configmaps?watch=true&labelSelector=app%3Dweb&resourceVersion={rv}"
        ))
        .unwrap_or_else(|resp| panic!("watch: {}", resp.text));
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    c.create_configmap(&ns, "plain", json!({}));
    c.post(
        &path,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "labels": {"app": "web"}}}),
    )
    .expect(201);
    let first = watch
        .next(Duration::from_secs(10))
        .expect("an event for the selected object");
    assert_eq!(first["type"], "ADDED");
    assert_eq!(
        first["object"]["metadata"]["name"], "web",
        "objects outside the selector are not sent: {first}"
    );
    // Labelling an object into the selection is an ADDED for this watch,
    // labelling one out of it a DELETED.
    c.patch(
        &format!("{path}/plain"),
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"app": "web"}}}),
    )
    .expect(200);
    let joined = watch
        .next(Duration::from_secs(10))
        .expect("an event for the joining object");
    assert_eq!(
        (
            joined["type"].as_str(),
            joined["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("plain")),
        "{joined}"
    );
    c.patch(
        &format!("{path}/web"),
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"app": null}}}),
    )
    .expect(200);
    let left = watch
        .next(Duration::from_secs(10))
        .expect("an event for the leaving object");
    assert_eq!(
        (
            left["type"].as_str(),
            left["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("web")),
        "{left}"
    );
}
