//! kubectl's read-only views beyond `get`: `describe` of the common kinds,
//! discovery (`api-resources`, `api-versions`), `explain` from the served
//! OpenAPI schemas, `get --raw`, and `version` without a skew warning.

mod common;

use common::manifests::deployment;
use common::{Cluster, namespace, unique};
use serde_json::{Value, json};

/// The value after `label` on the first line of a describe output that
/// starts with it (describe aligns values with spaces).
fn field<'a>(describe: &'a str, label: &str) -> Option<&'a str> {
    describe
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label).map(str::trim))
}

#[track_caller]
fn assert_field(describe: &str, label: &str, expected: &str) {
    let got = field(describe, label);
    assert!(
        got.is_some_and(|v| v.contains(expected)),
        "describe: {label} should show {expected:?}, got {got:?}:\n{describe}"
    );
}

#[test]
fn describe_pod_shows_metadata_containers_and_status() {
    let (c, ns) = namespace("describe-pod");
    c.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
  annotations: {{note: hello}}
spec:
  containers:
  - name: app
    image: file:///app.wasm
    args: [--port, \"8080\"]
    env: [{{name: MODE, value: fast}}]
"
    ));
    let out = c.kubectl_ok(&["describe", "pod", "web", "-n", &ns]);
    assert_field(&out, "Name:", "web");
    assert_field(&out, "Namespace:", &ns);
    assert_field(&out, "Labels:", "app=web");
    assert_field(&out, "Annotations:", "note: hello");
    assert_field(&out, "Status:", "Pending");
    assert_field(&out, "Image:", "file:///app.wasm");
    assert_field(&out, "MODE:", "fast");
    assert!(
        out.contains("Containers:\n  app:"),
        "the container is listed by name:\n{out}"
    );
    assert!(
        out.contains("Events:"),
        "describe lists the pod's events:\n{out}"
    );
}

#[test]
fn describe_deployment_shows_replicas_selector_and_template() {
    let (c, ns) = namespace("describe-deploy");
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &deployment("web", 3));
    let out = c.kubectl_ok(&["describe", "deployment", "web", "-n", &ns]);
    assert_field(&out, "Name:", "web");
    assert_field(&out, "Selector:", "app=web");
    assert_field(&out, "Replicas:", "3 desired");
    assert_field(&out, "StrategyType:", "RollingUpdate");
    assert!(out.contains("Pod Template:"), "{out}");
    assert_field(&out, "Image:", "file:///app.wasm");
}

#[test]
fn describe_service_shows_type_cluster_ip_and_ports() {
    let (c, ns) = namespace("describe-svc");
    c.apply(&format!(
        "apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"
    ));
    let out = c.kubectl_ok(&["describe", "service", "web", "-n", &ns]);
    assert_field(&out, "Name:", "web");
    assert_field(&out, "Selector:", "app=web");
    assert_field(&out, "Type:", "ClusterIP");
    assert_field(&out, "IP:", "10.43.");
    assert_field(&out, "Port:", "http");
    assert_field(&out, "Port:", "80/TCP");
    assert_field(&out, "TargetPort:", "8080/TCP");
}

#[test]
fn describe_namespace_shows_status_active() {
    let (c, ns) = namespace("describe-ns");
    let out = c.kubectl_ok(&["describe", "namespace", &ns]);
    assert_field(&out, "Name:", &ns);
    assert_field(&out, "Status:", "Active");
}

#[test]
fn describe_node_created_through_the_api() {
    let c = Cluster::shared();
    let name = unique("describe-node");
    c.post(
        "/api/v1/nodes",
        &json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": "edge-1"}},
            "spec": {"podCIDR": "10.42.7.0/24"},
        }),
    )
    .expect(201);
    let status = json!({
        "status": {
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "WasmpodReady", "message": "ready",
                            "lastHeartbeatTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0+wasmpod", "architecture": "amd64", "operatingSystem": "linux",
                         "containerRuntimeVersion": "wasmtime://48", "kernelVersion": "", "osImage": "",
                         "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
        }
    });
    c.patch(
        &format!("/api/v1/nodes/{name}/status"),
        "application/merge-patch+json",
        &status,
    )
    .expect(200);
    let out = c.kubectl_ok(&["describe", "node", &name]);
    assert_field(&out, "Name:", &name);
    assert!(out.contains("zone=edge-1"), "labels are shown:\n{out}");
    assert!(out.contains("Capacity:"), "capacity is shown:\n{out}");
    assert!(
        out.contains("Ready ") && out.contains("WasmpodReady"),
        "conditions are shown:\n{out}"
    );
    assert!(
        out.contains("Non-terminated Pods:"),
        "the node's pods are listed:\n{out}"
    );
    let get = c.kubectl_ok(&["get", "node", &name]);
    assert!(
        get.lines()
            .nth(1)
            .is_some_and(|l| l.contains("Ready") && l.contains("v1.32.0+wasmpod")),
        "{get}"
    );
}

#[test]
fn api_resources_lists_every_served_kind() {
    let c = Cluster::shared();
    let out = c.kubectl_ok(&["api-resources"]);
    let expected: &[(&str, &str, &str, &str)] = &[
        ("namespaces", "v1", "false", "Namespace"),
        ("nodes", "v1", "false", "Node"),
        ("pods", "v1", "true", "Pod"),
        ("services", "v1", "true", "Service"),
        ("endpoints", "v1", "true", "Endpoints"),
        ("configmaps", "v1", "true", "ConfigMap"),
        ("secrets", "v1", "true", "Secret"),
        ("serviceaccounts", "v1", "true", "ServiceAccount"),
        ("persistentvolumes", "v1", "false", "PersistentVolume"),
        (
            "persistentvolumeclaims",
            "v1",
            "true",
            "PersistentVolumeClaim",
        ),
        (
            "replicationcontrollers",
            "v1",
            "true",
            "ReplicationController",
        ),
        ("events", "v1", "true", "Event"),
        ("deployments", "apps/v1", "true", "Deployment"),
        ("replicasets", "apps/v1", "true", "ReplicaSet"),
        ("statefulsets", "apps/v1", "true", "StatefulSet"),
        ("daemonsets", "apps/v1", "true", "DaemonSet"),
        (
            "controllerrevisions",
            "apps/v1",
            "true",
            "ControllerRevision",
        ),
        ("jobs", "batch/v1", "true", "Job"),
        ("cronjobs", "batch/v1", "true", "CronJob"),
        ("leases", "coordination.k8s.io/v1", "true", "Lease"),
        ("roles", "rbac.authorization.k8s.io/v1", "true", "Role"),
        (
            "rolebindings",
            "rbac.authorization.k8s.io/v1",
            "true",
            "RoleBinding",
        ),
        (
            "clusterroles",
            "rbac.authorization.k8s.io/v1",
            "false",
            "ClusterRole",
        ),
        (
            "clusterrolebindings",
            "rbac.authorization.k8s.io/v1",
            "false",
            "ClusterRoleBinding",
        ),
    ];
    let mut missing = Vec::new();
    for (plural, version, namespaced, kind) in expected {
        let found = out.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.first() == Some(plural)
                && cells.contains(version)
                && cells.contains(namespaced)
                && cells.last() == Some(kind)
        });
        if !found {
            missing.push(*plural);
        }
    }
    assert!(
        missing.is_empty(),
        "api-resources lacks {missing:?}:\n{out}"
    );
    for (plural, short) in [
        ("pods", "po"),
        ("deployments", "deploy"),
        ("services", "svc"),
        ("configmaps", "cm"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(plural) && l.split_whitespace().nth(1) == Some(short)),
            "{plural} has short name {short}:\n{out}"
        );
    }
    let apps = c.kubectl_ok(&["api-resources", "--api-group=apps", "-o", "name"]);
    assert!(apps.lines().any(|l| l == "deployments.apps"), "{apps}");
    assert!(
        !apps.lines().any(|l| l == "pods"),
        "--api-group filters: {apps}"
    );
}

#[test]
fn api_versions_lists_the_served_groups() {
    let c = Cluster::shared();
    let out = c.kubectl_ok(&["api-versions"]);
    let lines: Vec<&str> = out.lines().collect();
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "coordination.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
    ] {
        assert!(lines.contains(&gv), "api-versions lacks {gv}:\n{out}");
    }
}

#[test]
fn explain_describes_pod_containers_from_the_openapi_schema() {
    let c = Cluster::shared();
    let out = c.kubectl_ok(&["explain", "pods.spec.containers"]);
    assert!(out.contains("KIND:") && out.contains("Pod"), "{out}");
    assert!(
        out.contains("FIELD:") && out.contains("containers"),
        "{out}"
    );
    assert!(
        out.contains("FIELDS:"),
        "the container's fields are listed:\n{out}"
    );
    for f in ["image", "name", "args", "env", "volumeMounts"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(f)),
            "explain lacks field {f}:\n{out}"
        );
    }
    let deploy = c.kubectl_ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        deploy.contains("replicas") && deploy.contains("integer"),
        "{deploy}"
    );
}

#[test]
fn get_raw_returns_the_api_json() {
    let (c, ns) = namespace("get-raw");
    c.create_configmap(&ns, "one", json!({"k": "v"}));
    let out = c.kubectl_ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/{ns}/configmaps"),
    ]);
    let list: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("--raw is not JSON ({e}): {out}"));
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["apiVersion"], "v1");
    assert!(
        list["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty()),
        "{out}"
    );
    assert_eq!(list["items"][0]["metadata"]["name"], "one", "{out}");
    let pods = c.kubectl_ok(&["get", "--raw", "/api/v1/namespaces/default/pods"]);
    let pods: Value = serde_json::from_str(&pods).unwrap_or_else(|e| panic!("--raw pods ({e})"));
    assert_eq!(pods["kind"], "PodList");
    assert!(pods["items"].is_array());
}

#[test]
fn version_reports_1_32_without_a_skew_warning() {
    let c = Cluster::shared();
    let out = c.kubectl(&["version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl version failed: {stderr}");
    assert!(
        stdout.contains("Server Version: v1.32.0+wasmpod"),
        "{stdout}"
    );
    assert!(
        !stderr.to_lowercase().contains("warning"),
        "kubectl warned: {stderr}"
    );
    let json_out = c.kubectl_ok(&["version", "-o", "json"]);
    let v: Value = serde_json::from_str(&json_out)
        .unwrap_or_else(|e| panic!("version -o json ({e}): {json_out}"));
    assert_eq!(v["serverVersion"]["major"], "1");
    assert_eq!(v["serverVersion"]["minor"], "32");
}
