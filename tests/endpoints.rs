//! The Endpoints controller end to end: pods bound to a fake node whose
//! status (podIP, Ready) this test reports as the node would, a Service
//! selecting them, and the Endpoints kubectl shows.

mod common;

use std::time::Duration;

use common::fake_node::FakeNodes;
use common::{Cluster, ClusterOptions, eventually};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A pod bound to `node`, labelled app=web, with a container port named
/// `web-port` (8080).
fn add_pod(c: &Cluster, name: &str, node: &str) {
    c.post(
        "/api/v1/namespaces/default/pods",
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "file:///app.wasm",
                "ports": [{"name": "web-port", "containerPort": 8080}]}]},
        }),
    )
    .expect(201);
}

fn report(c: &Cluster, pod: &str, ip: &str, ready: bool) {
    let ready = if ready { "True" } else { "False" };
    c.patch(
        &format!("/api/v1/namespaces/default/pods/{pod}/status"),
        "application/merge-patch+json",
        &json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": ready}]}}),
    )
    .expect(200);
}

fn endpoints(c: &Cluster, name: &str) -> Option<Value> {
    let got = c.get(&format!("/api/v1/namespaces/default/endpoints/{name}"));
    (got.status == 200).then(|| got.body.clone())
}

#[track_caller]
fn wait_endpoints(c: &Cluster, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(TIMEOUT, || endpoints(c, name).filter(|e| check(e))).unwrap_or_else(|| {
        panic!(
            "endpoints {name}: {what}; have {:?}\nserver log:\n{}",
            endpoints(c, name),
            c.server_log_tail(30)
        )
    })
}

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: web-port
"#;

#[test]
fn a_service_lists_its_pods_addresses_by_readiness() {
    let c = Cluster::start_with_options(ClusterOptions::with_silent_nodes());
    let nodes = FakeNodes::new(&c);
    nodes.add(&c, "n1", json!({}), json!([]));
    add_pod(&c, "ready", "n1");
    add_pod(&c, "starting", "n1");
    add_pod(&c, "no-ip", "n1");
    report(&c, "ready", "10.1.0.1", true);
    report(&c, "starting", "10.1.0.2", false);

    // A Service without a selector keeps the Endpoints written by hand.
    c.post(
        "/api/v1/namespaces/default/services",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual"},
            "spec": {"ports": [{"port": 5432}]}}),
    )
    .expect(201);
    let manual =
        json!([{"addresses": [{"ip": "10.9.9.9"}], "ports": [{"port": 5432, "protocol": "TCP"}]}]);
    c.post(
        "/api/v1/namespaces/default/endpoints",
        &json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
            "subsets": manual}),
    )
    .expect(201);

    c.apply(SERVICE);
    eventually(TIMEOUT, || {
        let out = c.kubectl_ok(&["get", "endpoints", "web"]);
        out.contains("10.1.0.1:8080").then_some(out)
    })
    .unwrap_or_else(|| {
        panic!(
            "kubectl get endpoints web: {}",
            c.kubectl_ok(&["get", "endpoints", "web"])
        )
    });

    let ep = wait_endpoints(&c, "web", "the not-ready pod listed", |e| {
        !e["subsets"][0]["notReadyAddresses"].is_null()
    });
    let subset = &ep["subsets"][0];
    assert_eq!(ep["subsets"].as_array().map(Vec::len), Some(1), "{ep}");
    let ready = &subset["addresses"][0];
    assert_eq!(ready["ip"], "10.1.0.1");
    assert_eq!(ready["nodeName"], "n1");
    assert_eq!(ready["targetRef"]["kind"], "Pod");
    assert_eq!(ready["targetRef"]["name"], "ready");
    assert_eq!(ready["targetRef"]["namespace"], "default");
    assert!(ready["targetRef"]["uid"].is_string());
    assert_eq!(subset["notReadyAddresses"][0]["ip"], "10.1.0.2");
    assert_eq!(
        subset["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );

    // The pod becoming Ready moves it; a relabelled pod leaves.
    report(&c, "starting", "10.1.0.2", true);
    wait_endpoints(&c, "web", "both addresses ready", |e| {
        e["subsets"][0]["addresses"].as_array().map(Vec::len) == Some(2)
            && e["subsets"][0]["notReadyAddresses"].is_null()
    });
    c.kubectl_ok(&["label", "pod", "ready", "app=other", "--overwrite"]);
    let ep = wait_endpoints(&c, "web", "only 10.1.0.2", |e| {
        e["subsets"][0]["addresses"].as_array().map(Vec::len) == Some(1)
    });
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.1.0.2");

    // A pod change that moves no address writes nothing.
    let version = ep["metadata"]["resourceVersion"].clone();
    c.kubectl_ok(&["annotate", "pod", "starting", "note=unrelated"]);
    std::thread::sleep(Duration::from_secs(2));
    let after = endpoints(&c, "web").expect("endpoints web");
    assert_eq!(after["metadata"]["resourceVersion"], version);

    assert_eq!(
        endpoints(&c, "manual").expect("endpoints manual")["subsets"],
        manual
    );

    // Deleting the Service deletes its Endpoints.
    c.kubectl_ok(&["delete", "service", "web"]);
    eventually(TIMEOUT, || endpoints(&c, "web").is_none().then_some(()))
        .expect("the Endpoints of a deleted Service are deleted");
}
