//! Bad input over raw HTTP gets the Kubernetes `Status` a client switches
//! on (code and reason), and leaves the objects already stored untouched.

mod common;

use std::time::Duration;

use common::http::{ApiResponse, assert_status_object};
use common::{Cluster, ClusterOptions, namespace, unique};
use reqwest::Method;
use serde_json::{Value, json};

/// A stored ConfigMap that every bad request below must leave as it is.
struct Witness {
    path: String,
    object: Value,
}

impl Witness {
    fn create(c: &Cluster, ns: &str) -> Witness {
        let object = c.create_configmap(ns, "witness", json!({"keep": "me"}));
        Witness {
            path: format!("/api/v1/namespaces/{ns}/configmaps/witness"),
            object,
        }
    }

    #[track_caller]
    fn assert_intact(&self, c: &Cluster) {
        let now = c.get(&self.path);
        assert_eq!(
            now.expect(200),
            &self.object,
            "a rejected request changed an existing object"
        );
    }
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

#[test]
fn malformed_json_is_400_bad_request() {
    let (c, ns) = namespace("bad-json");
    let w = Witness::create(c, &ns);
    let broken = br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"#.to_vec();
    let collection = format!("/api/v1/namespaces/{ns}/configmaps");
    c.send(
        Method::POST,
        &collection,
        Some("application/json"),
        Some(broken.clone()),
    )
    .expect_status(400, "BadRequest");
    c.send(
        Method::PUT,
        &w.path,
        Some("application/json"),
        Some(broken.clone()),
    )
    .expect_status(400, "BadRequest");
    c.send(
        Method::PATCH,
        &w.path,
        Some("application/merge-patch+json"),
        Some(broken.clone()),
    )
    .expect_status(400, "BadRequest");
    c.send(
        Method::PATCH,
        &w.path,
        Some("application/json-patch+json"),
        Some(br#"{"op": "add"}"#.to_vec()),
    )
    .expect_status(400, "BadRequest");
    c.send(
        Method::POST,
        &collection,
        Some("application/yaml"),
        Some(b"metadata: [unclosed".to_vec()),
    )
    .expect_status(400, "BadRequest");
    c.send(
        Method::POST,
        &collection,
        Some("application/json"),
        Some(Vec::new()),
    )
    .expect_status(400, "BadRequest");
    let wrong_ns = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "other"}});
    c.post(&collection, &wrong_ns)
        .expect_status(400, "BadRequest");
    let wrong_kind = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    c.post(&collection, &wrong_kind)
        .expect_status(400, "BadRequest");
    w.assert_intact(c);
}

#[test]
fn unknown_resources_and_objects_are_404_not_found() {
    let (c, ns) = namespace("not-found");
    let w = Witness::create(c, &ns);
    for path in [
        format!("/api/v1/namespaces/{ns}/widgets"),
        "/api/v1/widgets".to_string(),
        "/apis/example.com/v1/foos".to_string(),
        "/apis/apps/v2/deployments".to_string(),
        "/api/v2".to_string(),
    ] {
        c.get(&path).expect_status(404, "NotFound");
    }
    c.post(&format!("/api/v1/namespaces/{ns}/widgets"), &configmap("x"))
        .expect_status(404, "NotFound");
    let missing = c.get(&format!("/api/v1/namespaces/{ns}/configmaps/missing"));
    let status = missing.expect_status(404, "NotFound");
    assert_eq!(status["details"]["name"], "missing", "{status}");
    assert_eq!(status["details"]["kind"], "configmaps", "{status}");
    c.delete(&format!("/api/v1/namespaces/{ns}/configmaps/missing"))
        .expect_status(404, "NotFound");
    let absent_ns = unique("absent");
    c.post(
        &format!("/api/v1/namespaces/{absent_ns}/configmaps"),
        &configmap("x"),
    )
    .expect_status(404, "NotFound");
    w.assert_intact(c);
}

#[test]
fn creating_an_existing_object_is_409_already_exists() {
    let (c, ns) = namespace("exists");
    let w = Witness::create(c, &ns);
    let again = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "witness"}, "data": {"other": "x"}});
    let status = c
        .post(&format!("/api/v1/namespaces/{ns}/configmaps"), &again)
        .expect_status(409, "AlreadyExists")
        .clone();
    assert_eq!(status["details"]["name"], "witness", "{status}");
    w.assert_intact(c);
}

#[test]
fn update_with_a_stale_resource_version_is_409_conflict() {
    let (c, ns) = namespace("conflict");
    let original = c.create_configmap(&ns, "cm", json!({"v": "1"}));
    let path = format!("/api/v1/namespaces/{ns}/configmaps/cm");
    let mut first = original.clone();
    first["data"]["v"] = json!("2");
    let updated = c.put(&path, &first).expect(200).clone();
    assert_ne!(
        updated["metadata"]["resourceVersion"],
        original["metadata"]["resourceVersion"]
    );
    let mut stale = original.clone();
    stale["data"]["v"] = json!("3");
    c.put(&path, &stale).expect_status(409, "Conflict");
    let stale_patch = json!({"metadata": {"resourceVersion": original["metadata"]["resourceVersion"]}, "data": {"v": "4"}});
    c.patch(&path, "application/merge-patch+json", &stale_patch)
        .expect_status(409, "Conflict");
    let now = c.get(&path);
    assert_eq!(
        now.expect(200),
        &updated,
        "the losing writes changed nothing"
    );
}

#[test]
fn an_invalid_name_is_422_invalid_naming_metadata_name() {
    let (c, ns) = namespace("bad-name");
    let w = Witness::create(c, &ns);
    let resp = c.post(
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        &configmap("Bad_Name"),
    );
    let status = resp.expect_status(422, "Invalid");
    let causes = status["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        causes.iter().any(
            |cause| cause["field"] == "metadata.name" && cause["reason"] == "FieldValueInvalid"
        ),
        "a cause names metadata.name: {status}"
    );
    assert_eq!(status["details"]["name"], "Bad_Name");
    assert_eq!(status["details"]["kind"], "ConfigMap");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}});
    let status = c
        .post(&format!("/api/v1/namespaces/{ns}/pods"), &pod)
        .expect_status(422, "Invalid")
        .clone();
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.containers")),
        "{status}"
    );
    w.assert_intact(c);
}

#[test]
fn a_deployment_whose_selector_misses_its_template_is_422_naming_the_field() {
    let (c, ns) = namespace("bad-selector");
    let deploy = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "other"}},
                "spec": {"containers": [{"name": "app", "image": "file:///app.wasm"}]},
            },
        },
    });
    let resp = c.post(
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        &deploy,
    );
    let status = resp.expect_status(422, "Invalid");
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields
            .iter()
            .any(|f| *f == "spec.template.metadata.labels" || *f == "spec.selector"),
        "a cause names the selector or the template labels: {status}"
    );
    assert_eq!(status["details"]["group"], "apps", "{status}");
    c.get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web"))
        .expect_status(404, "NotFound");
}

#[test]
fn a_body_over_3_mib_is_413_request_entity_too_large() {
    let (c, ns) = namespace("too-large");
    let w = Witness::create(c, &ns);
    let big = "x".repeat(3 * 1024 * 1024 + 1024);
    let resp = c.post(&format!("/api/v1/namespaces/{ns}/configmaps"), &json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"blob": big}
    }));
    resp.expect_status(413, "RequestEntityTooLarge");
    c.get(&format!("/api/v1/namespaces/{ns}/configmaps/big"))
        .expect_status(404, "NotFound");
    w.assert_intact(c);
}

#[test]
fn an_unsupported_content_type_is_415() {
    let (c, ns) = namespace("media-type");
    let w = Witness::create(c, &ns);
    let body = configmap("x").to_string().into_bytes();
    c.send(
        Method::POST,
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        Some("text/plain"),
        Some(body.clone()),
    )
    .expect_status(415, "UnsupportedMediaType");
    c.send(Method::PUT, &w.path, Some("application/xml"), Some(body))
        .expect_status(415, "UnsupportedMediaType");
    // A patch must say which kind of patch it is.
    c.send(
        Method::PATCH,
        &w.path,
        Some("application/json"),
        Some(br#"{"data": {"keep": "no"}}"#.to_vec()),
    )
    .expect_status(415, "UnsupportedMediaType");
    w.assert_intact(c);
}

/// The first event line of a watch, or the error response.
fn watch_outcome(c: &Cluster, path: &str) -> Result<Value, ApiResponse> {
    let mut stream = c.watch(path)?;
    Ok(stream.next(Duration::from_secs(10)).unwrap_or(Value::Null))
}

#[test]
fn a_watch_from_a_compacted_revision_is_410_expired() {
    let c = Cluster::start_with_options(ClusterOptions {
        watch_window: Some(10),
        ..ClusterOptions::default()
    });
    let ns = unique("gone");
    c.create_namespace(&ns);
    let w = Witness::create(&c, &ns);
    for i in 0..50 {
        c.create_configmap(&ns, &format!("cm-{i}"), json!({"i": i.to_string()}));
    }
    let path = format!(
        "/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion=1&timeoutSeconds=10"
    );
    // kube-apiserver answers 200 with an ERROR event; a plain 410 is also
    // understood by clients. Either must carry a 410 Expired Status.
    match watch_outcome(&c, &path) {
        Err(resp) => {
            assert_eq!(resp.status, 410, "{}", resp.text);
            let reason = resp.body["reason"].as_str().unwrap_or_default().to_string();
            assert!(reason == "Expired" || reason == "Gone", "{}", resp.text);
            assert_status_object(&resp.body, 410, &reason);
        }
        Ok(event) => {
            assert_eq!(
                event["type"], "ERROR",
                "the first event of a too-old watch is an ERROR: {event}"
            );
            let reason = event["object"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(reason == "Expired" || reason == "Gone", "{event}");
            assert_status_object(&event["object"], 410, &reason);
        }
    }
    // A watch from the current revision still works, and nothing was lost.
    let listed = c
        .get(&format!("/api/v1/namespaces/{ns}/configmaps"))
        .expect(200)
        .clone();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(51));
    let rv = listed["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut stream = c
        .watch(&format!(
            "/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=20"
        ))
        .unwrap_or_else(|resp| panic!("watch from the current revision: {}", resp.text));
    c.create_configmap(&ns, "fresh", json!({}));
    stream.wait_for(Duration::from_secs(10), "ADDED fresh", |ev| {
        ev["type"] == "ADDED" && ev["object"]["metadata"]["name"] == "fresh"
    });
    w.assert_intact(&c);
}
