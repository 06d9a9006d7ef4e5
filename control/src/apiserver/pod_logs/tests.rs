//! The log proxy: its checks as functions, and whole requests through the
//! router to a stand-in node endpoint.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::routing::get;
use http::Request;
use serde_json::json;
use tower::ServiceExt;

use super::*;
use crate::apiserver::{ApiState, router};

fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn log_options_are_checked_naming_the_field() {
    let ok = LogQuery::parse(&query(&[
        ("container", "c"),
        ("follow", "true"),
        ("tailLines", "0"),
        ("sinceTime", "2024-01-01T00:00:00Z"),
        ("limitBytes", "1"),
    ]))
    .expect("valid");
    assert_eq!(ok.container.as_deref(), Some("c"));
    assert!(ok.follow && !ok.previous);
    for (pairs, field) in [
        (&[("tailLines", "-1")][..], "tailLines"),
        (&[("tailLines", "x")], "tailLines"),
        (&[("limitBytes", "0")], "limitBytes"),
        (&[("sinceSeconds", "0")], "sinceSeconds"),
        (&[("sinceTime", "2024-01-01")], "sinceTime"),
        (&[("previous", "yes")], "previous"),
        (
            &[
                ("sinceSeconds", "10"),
                ("sinceTime", "2024-01-01T00:00:00Z"),
            ],
            "sinceSeconds",
        ),
    ] {
        let err = LogQuery::parse(&query(pairs)).expect_err("invalid");
        assert_eq!(err.code(), 400, "{pairs:?}");
        assert!(err.to_string().starts_with(field), "{pairs:?}: {err}");
    }
}

fn pod(containers: &[&str], init: &[&str]) -> Value {
    let list = |names: &[&str]| names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>();
    json!({"spec": {"containers": list(containers), "initContainers": list(init)}})
}

#[test]
fn the_container_is_chosen_as_kubernetes_does() {
    assert_eq!(
        choose_container(&pod(&["app"], &["setup"]), "web", None).expect("the only one"),
        "app"
    );
    assert_eq!(
        choose_container(&pod(&["app"], &["setup"]), "web", Some("setup")).expect("init"),
        "setup"
    );
    let err = choose_container(&pod(&["a", "b"], &["i"]), "web", None).expect_err("ambiguous");
    assert_eq!(
        err.to_string(),
        "a container name must be specified for pod web, choose one of: [i a b]"
    );
    let err = choose_container(&pod(&["a"], &[]), "web", Some("x")).expect_err("unknown");
    assert_eq!(err.to_string(), "container x is not valid for pod web");
    assert_eq!(err.code(), 400);
}

#[test]
fn the_node_endpoint_prefers_the_internal_ip() {
    let node = |addresses: Value, port: Value| json!({"status": {"addresses": addresses, "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}});
    let both = json!([{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.2"}]);
    assert_eq!(
        kubelet_endpoint(&node(both, json!(10250)), "n1").expect("an endpoint"),
        ("10.0.0.2".to_string(), 10250)
    );
    let host = json!([{"type": "Hostname", "address": "n1.local"}]);
    assert_eq!(
        kubelet_endpoint(&node(host, json!(1)), "n1")
            .expect("an endpoint")
            .0,
        "n1.local"
    );
    assert_eq!(
        kubelet_endpoint(&node(json!([]), json!(1)), "n1")
            .expect("an endpoint")
            .0,
        "127.0.0.1"
    );
    let err = kubelet_endpoint(&json!({"status": {}}), "n1").expect_err("no port");
    assert_eq!(err.code(), 503);
    assert!(err.to_string().contains("\"n1\""), "{err}");
    assert_eq!(authority("::1", 8), "[::1]:8");
}

/// An API server on a temporary SQLite store, with a pod `web` on node
/// `n1` whose log endpoint is `node_port`.
async fn api(dir: &tempfile::TempDir, node_port: u16) -> Router {
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = crate::store::Store::open(&url, Default::default())
        .await
        .expect("a store");
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-web"},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "file:///a.wasm"}]},
    });
    let unscheduled = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pending", "namespace": "default", "uid": "uid-pending"},
        "spec": {"containers": [{"name": "app", "image": "file:///a.wasm"}]},
    });
    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": node_port}},
        },
    });
    store
        .create(Key::new("pods", "default", "web"), pod)
        .await
        .expect("a pod");
    store
        .create(Key::new("pods", "default", "pending"), unscheduled)
        .await
        .expect("a pod");
    store
        .create(Key::new("nodes", "", "n1"), node)
        .await
        .expect("a node");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    router(ApiState::new(store, tx))
}

/// A node log endpoint that answers with what it was asked, in two chunks.
async fn fake_node() -> u16 {
    let app = Router::new().route(
        "/containerLogs/{ns}/{pod}/{container}",
        get(
            |Path((ns, pod, c)): Path<(String, String, String)>, RawQuery(q): RawQuery| async move {
                let first = format!("{ns}/{pod}/{c}\n");
                let second = format!("{}\n", q.unwrap_or_default());
                let chunks = futures::stream::iter([Ok::<_, std::io::Error>(first), Ok(second)]);
                axum::response::Response::builder()
                    .header("content-type", "text/plain")
                    .body(Body::from_stream(chunks))
                    .expect("a response")
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let port = listener.local_addr().expect("an address").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn get_log(app: &Router, uri: &str) -> (u16, String, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("a response");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = tokio::time::timeout(
        Duration::from_secs(10),
        axum::body::to_bytes(response.into_body(), usize::MAX),
    )
    .await
    .expect("the body ends")
    .expect("a body");
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn a_log_request_is_forwarded_to_the_pods_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = api(&dir, fake_node().await).await;
    let (status, content_type, body) = get_log(
        &app,
        "/api/v1/namespaces/default/pods/web/log?follow=true&tailLines=5&timestamps=1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain");
    assert_eq!(
        body,
        "default/web/app\npodUID=uid-web&follow=true&timestamps=true&tailLines=5\n"
    );
}

#[tokio::test]
async fn log_requests_that_cannot_be_served_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens on the node's port once this listener is gone.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        l.local_addr().expect("an address").port()
    };
    let app = api(&dir, closed).await;
    for (uri, code, text) in [
        (
            "/api/v1/namespaces/default/pods/gone/log",
            404,
            "pods \"gone\" not found",
        ),
        (
            "/api/v1/namespaces/default/pods/pending/log",
            400,
            "pod pending does not have a host assigned",
        ),
        (
            "/api/v1/namespaces/default/pods/web/log?container=db",
            400,
            "container db is not valid for pod web",
        ),
        (
            "/api/v1/namespaces/default/pods/web/log?tailLines=-2",
            400,
            "tailLines",
        ),
        ("/api/v1/namespaces/default/pods/web/log", 503, "\"n1\""),
    ] {
        let (status, content_type, body) = get_log(&app, uri).await;
        assert_eq!(status, code, "{uri}: {body}");
        assert_eq!(content_type, "application/json", "{uri}");
        let status_object: Value = serde_json::from_str(&body).expect("a Status");
        let message = status_object["message"].as_str().unwrap_or_default();
        assert!(message.contains(text), "{uri}: {message}");
    }
}
