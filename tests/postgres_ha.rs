//! Two API servers on one Postgres serve one cluster: what is written
//! through one is read, and watched, through the other.

mod common;

use std::time::Duration;

use common::manifests::deployment;
use common::postgres::PgSchema;
use common::{Cluster, unique};
use serde_json::json;

#[test]
fn two_servers_on_one_postgres_serve_the_same_objects_and_watches() {
    let schema = PgSchema::create();
    let a = Cluster::start_with(Some(schema.datastore_url()));
    let b = Cluster::start_with(Some(schema.datastore_url()));
    let ns = unique("ha");
    a.create_namespace(&ns);

    // A pod created through one server is listed by the other.
    a.kubectl_ok_stdin(
        &["create", "-n", &ns, "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: shared}\nspec: {containers: [{name: app, image: file:///app.wasm}]}\n",
    );
    let listed = b.kubectl_ok(&["get", "pods", "-n", &ns, "-o", "name"]);
    assert_eq!(listed.trim(), "pod/shared");
    let from_a = a
        .get(&format!("/api/v1/namespaces/{ns}/pods/shared"))
        .expect(200)
        .clone();
    let from_b = b
        .get(&format!("/api/v1/namespaces/{ns}/pods/shared"))
        .expect(200)
        .clone();
    assert_eq!(from_a, from_b, "both servers return the same object");

    // A watch on one server sees writes made through the other, in order.
    let rv = b
        .get(&format!("/api/v1/namespaces/{ns}/configmaps"))
        .expect(200)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut watch = b
        .watch(&format!(
            "/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=30"
        ))
        .unwrap_or_else(|resp| panic!("watch on b: {}", resp.text));
    a.create_configmap(&ns, "from-a", json!({"n": "1"}));
    a.patch(
        &format!("/api/v1/namespaces/{ns}/configmaps/from-a"),
        "application/merge-patch+json",
        &json!({"data": {"n": "2"}}),
    )
    .expect(200);
    a.delete(&format!("/api/v1/namespaces/{ns}/configmaps/from-a"))
        .expect_success();
    let added = watch.wait_for(Duration::from_secs(15), "ADDED from-a", |ev| {
        ev["type"] == "ADDED"
    });
    assert_eq!(added["object"]["metadata"]["name"], "from-a");
    let modified = watch.wait_for(Duration::from_secs(15), "MODIFIED from-a", |ev| {
        ev["type"] == "MODIFIED"
    });
    assert_eq!(modified["object"]["data"]["n"], "2");
    watch.wait_for(Duration::from_secs(15), "DELETED from-a", |ev| {
        ev["type"] == "DELETED"
    });

    // And the other way round, through kubectl's watch.
    let mut kubectl_watch =
        a.kubectl_background(&["get", "configmaps", "-n", &ns, "-w", "-o", "name"]);
    b.create_configmap(&ns, "marker", json!({}));
    kubectl_watch.wait_for_line("configmap/marker", Duration::from_secs(20));
    b.create_configmap(&ns, "from-b", json!({}));
    kubectl_watch.wait_for_line("configmap/from-b", Duration::from_secs(20));

    // Revisions are one sequence across both servers.
    let rv_a: u64 = a.create_configmap(&ns, "seq-a", json!({}))["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rv_b: u64 = b.create_configmap(&ns, "seq-b", json!({}))["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(
        rv_b > rv_a,
        "a later write through the other server has a later revision ({rv_a}, {rv_b})"
    );
}

#[test]
fn kubectl_works_against_a_postgres_backed_server() {
    let schema = PgSchema::create();
    let c = Cluster::start_with(Some(schema.datastore_url()));
    let ns = unique("pg-kubectl");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &deployment("web", 1));
    c.kubectl_ok(&["scale", "deployment/web", "-n", &ns, "--replicas=3"]);
    let replicas = c.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        &ns,
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas, "3");
    c.kubectl_ok(&["delete", "namespace", &ns, "--timeout=60s"]);
    let err = c.kubectl_err(&["get", "namespace", &ns]);
    assert!(err.contains("NotFound"), "{err}");
}
