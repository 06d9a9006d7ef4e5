//! `kubectl get` against the real server: output formats, label and field
//! selectors, `-A` and `-w`.

mod common;

use std::time::Duration;

use common::manifests::{deployment, pod};
use common::table::{columns, header, names, row};
use common::{Cluster, namespace, unique};
use serde_json::{Value, json};

#[test]
fn get_pods_prints_name_ready_status_restarts_age() {
    let (c, ns) = namespace("get-pods");
    c.kubectl_ok_stdin(
        &["create", "-n", &ns, "-f", "-"],
        &pod("web", &[("app", "web")]),
    );
    let out = c.kubectl_ok(&["get", "pods", "-n", &ns]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        columns(lines[0]),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    let cells = columns(row(&out, "web").unwrap_or_else(|| panic!("no row for web: {out}")));
    assert_eq!(&cells[..4], ["web", "0/1", "Pending", "0"], "{out}");
}

#[test]
fn get_wide_adds_ip_and_node_columns() {
    let (c, ns) = namespace("get-wide");
    c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &pod("web", &[]));
    let out = c.kubectl_ok(&["get", "pods", "-n", &ns, "-o", "wide"]);
    let header = header(&out);
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ],
        "{out}"
    );
    let cells = columns(row(&out, "web").unwrap_or_else(|| panic!("no row for web: {out}")));
    assert_eq!(
        cells.get(6).map(String::as_str),
        Some("<none>"),
        "an unscheduled pod has no node: {out}"
    );
}

#[test]
fn get_yaml_and_json_print_the_stored_object() {
    let (c, ns) = namespace("get-yaml");
    c.kubectl_ok_stdin(
        &["create", "-n", &ns, "-f", "-"],
        &pod("web", &[("app", "web")]),
    );
    let yaml = c.kubectl_ok(&["get", "pod", "web", "-n", &ns, "-o", "yaml"]);
    let from_yaml: Value =
        serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("-o yaml is not YAML ({e}): {yaml}"));
    let json_text = c.kubectl_ok(&["get", "pod", "web", "-n", &ns, "-o", "json"]);
    let from_json: Value = serde_json::from_str(&json_text)
        .unwrap_or_else(|e| panic!("-o json is not JSON ({e}): {json_text}"));
    assert_eq!(from_yaml, from_json, "yaml and json disagree");
    let meta = &from_json["metadata"];
    assert_eq!(from_json["apiVersion"], "v1");
    assert_eq!(from_json["kind"], "Pod");
    assert_eq!(meta["name"], "web");
    assert_eq!(meta["namespace"], ns.as_str());
    assert_eq!(meta["labels"]["app"], "web");
    for field in ["uid", "resourceVersion", "creationTimestamp"] {
        assert!(
            meta[field].as_str().is_some_and(|s| !s.is_empty()),
            "metadata.{field} missing: {json_text}"
        );
    }
    assert_eq!(
        from_json["spec"]["containers"][0]["image"],
        "file:///app.wasm"
    );
    assert_eq!(from_json["status"]["phase"], "Pending", "{json_text}");

    let list_text = c.kubectl_ok(&["get", "pods", "-n", &ns, "-o", "json"]);
    let list: Value = serde_json::from_str(&list_text)
        .unwrap_or_else(|e| panic!("list -o json ({e}): {list_text}"));
    assert_eq!(list["kind"], "List", "{list_text}");
    assert_eq!(list["items"][0]["metadata"]["name"], "web", "{list_text}");
}

#[test]
fn get_name_prints_kind_slash_name() {
    let (c, ns) = namespace("get-name");
    c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &pod("a", &[]));
    c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &pod("b", &[]));
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &deployment("web", 1));
    let pods: Vec<String> = names(&c.kubectl_ok(&["get", "pods", "-n", &ns, "-o", "name"]))
        .into_iter()
        .filter(|n| !n.starts_with("pod/web-"))
        .collect();
    assert_eq!(pods, ["pod/a", "pod/b"]);
    assert_eq!(
        c.kubectl_ok(&["get", "deploy", "-n", &ns, "-o", "name"])
            .trim(),
        "deployment.apps/web"
    );
}

#[test]
fn get_jsonpath_extracts_fields() {
    let (c, ns) = namespace("get-jsonpath");
    c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &pod("a", &[]));
    c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &pod("b", &[]));
    let out = c.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        &ns,
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(out.trim(), "a b");
    let image = c.kubectl_ok(&[
        "get",
        "pod",
        "a",
        "-n",
        &ns,
        "-o",
        "jsonpath={.spec.containers[0].image}",
    ]);
    assert_eq!(image, "file:///app.wasm");
    let ns_of = c.kubectl_ok(&[
        "get",
        "pod",
        "a",
        "-n",
        &ns,
        "-o",
        "jsonpath={.metadata.namespace}",
    ]);
    assert_eq!(ns_of, ns);
}

#[test]
fn get_label_selector_filters_with_every_operator() {
    let (c, ns) = namespace("get-labels");
    for (name, labels) in [
        ("web-1", vec![("app", "web"), ("tier", "front")]),
        ("web-2", vec![("app", "web")]),
        ("db-1", vec![("app", "db"), ("tier", "back")]),
        ("plain", vec![]),
    ] {
        c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &pod(name, &labels));
    }
    let cases: [(&str, &[&str]); 7] = [
        ("app=web", &["pod/web-1", "pod/web-2"]),
        ("app==web,tier=front", &["pod/web-1"]),
        ("app!=web", &["pod/db-1", "pod/plain"]),
        ("app in (web,db)", &["pod/db-1", "pod/web-1", "pod/web-2"]),
        ("app notin (web)", &["pod/db-1", "pod/plain"]),
        ("tier", &["pod/db-1", "pod/web-1"]),
        ("!tier", &["pod/plain", "pod/web-2"]),
    ];
    let mut failures = Vec::new();
    for (selector, expected) in cases {
        let out = c.kubectl(&["get", "pods", "-n", &ns, "-l", selector, "-o", "name"]);
        let got = names(&String::from_utf8_lossy(&out.stdout));
        if !out.status.success() || got != expected {
            failures.push(format!(
                "-l {selector:?}: expected {expected:?}, got {got:?} (stderr: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "label selectors:\n{}",
        failures.join("\n")
    );
}

#[test]
fn get_field_selector_filters_by_name_phase_and_node() {
    let (c, ns) = namespace("get-fields");
    c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &pod("a", &[]));
    c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &pod("b", &[]));
    let get = |selector: &str| {
        names(&c.kubectl_ok(&[
            "get",
            "pods",
            "-n",
            &ns,
            "--field-selector",
            selector,
            "-o",
            "name",
        ]))
    };
    assert_eq!(get("metadata.name=a"), ["pod/a"]);
    assert_eq!(get("metadata.name!=a"), ["pod/b"]);
    assert_eq!(get("status.phase=Pending"), ["pod/a", "pod/b"]);
    assert!(get("status.phase=Running").is_empty());
    assert_eq!(get("spec.nodeName="), ["pod/a", "pod/b"]);
    assert_eq!(get(&format!("metadata.namespace={ns}")), ["pod/a", "pod/b"]);
    let err = c.kubectl_err(&[
        "get",
        "pods",
        "-n",
        &ns,
        "--field-selector",
        "spec.noSuchField=x",
    ]);
    assert!(
        err.contains("spec.noSuchField"),
        "an unsupported field selector names the field: {err}"
    );
}

#[test]
fn get_all_namespaces_shows_namespace_column() {
    let (c, ns1) = namespace("get-all-a");
    let ns2 = unique("get-all-b");
    c.create_namespace(&ns2);
    c.create_configmap(&ns1, "shared-name", json!({"k": "1"}));
    c.create_configmap(&ns2, "shared-name", json!({"k": "2"}));
    let out = c.kubectl_ok(&["get", "configmaps", "-A"]);
    assert_eq!(header(&out), ["NAMESPACE", "NAME", "DATA", "AGE"], "{out}");
    for ns in [&ns1, &ns2] {
        assert!(
            out.lines().any(|l| l
                .split_whitespace()
                .take(2)
                .eq([ns.as_str(), "shared-name"])),
            "{ns}/shared-name missing from -A: {out}"
        );
    }
    let paths = c.kubectl_ok(&[
        "get",
        "configmaps",
        "--all-namespaces",
        "--field-selector",
        "metadata.name=shared-name",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}{\"\\n\"}{end}",
    ]);
    let mut seen: Vec<&str> = paths.lines().filter(|l| *l == ns1 || *l == ns2).collect();
    seen.sort();
    let mut want = vec![ns1.as_str(), ns2.as_str()];
    want.sort();
    assert_eq!(seen, want, "{paths}");
}

#[test]
fn get_namespaces_lists_the_system_namespaces_as_active() {
    let c = Cluster::shared();
    let out = c.kubectl_ok(&["get", "namespaces"]);
    assert_eq!(header(&out), ["NAME", "STATUS", "AGE"], "{out}");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let cells = columns(row(&out, ns).unwrap_or_else(|| panic!("{ns} missing: {out}")));
        assert_eq!(cells.get(1).map(String::as_str), Some("Active"), "{out}");
    }
    let svc = c.kubectl_ok(&[
        "get",
        "service",
        "kubernetes",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert!(
        svc.starts_with("10.43."),
        "the kubernetes Service has a cluster IP from 10.43.0.0/16: {svc}"
    );
}

#[test]
fn get_watch_prints_objects_created_after_it_started() {
    let (c, ns) = namespace("get-watch");
    c.create_configmap(&ns, "before", json!({"a": "1"}));
    let mut watch = c.kubectl_background(&["get", "configmaps", "-n", &ns, "-w"]);
    // The listed object shows the watch is established before the write.
    watch.wait_for_line("before", Duration::from_secs(20));
    c.create_configmap(&ns, "after", json!({"a": "1", "b": "2"}));
    let line = watch.wait_for_line("after", Duration::from_secs(20));
    assert_eq!(
        columns(&line).get(1).map(String::as_str),
        Some("2"),
        "DATA column of the watched line: {line}"
    );

    let mut events = c.kubectl_background(&[
        "get",
        "configmaps",
        "-n",
        &ns,
        "-w",
        "--output-watch-events",
    ]);
    let head = events.wait_for_line("NAME", Duration::from_secs(20));
    assert_eq!(columns(&head), ["EVENT", "NAME", "DATA", "AGE"], "{head}");
    let added = events.wait_for_line("before", Duration::from_secs(20));
    assert_eq!(
        columns(&added).first().map(String::as_str),
        Some("ADDED"),
        "{added}"
    );
    c.kubectl_ok(&["delete", "configmap", "after", "-n", &ns]);
    let deleted = events.wait_for_line("DELETED", Duration::from_secs(20));
    assert_eq!(
        columns(&deleted).get(1).map(String::as_str),
        Some("after"),
        "{deleted}"
    );
}

#[test]
fn get_all_lists_the_kinds_of_the_all_category() {
    let (c, ns) = namespace("get-all-category");
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &deployment("web", 1));
    c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &pod("solo", &[]));
    c.kubectl_ok_stdin(
        &["create", "-n", &ns, "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n",
    );
    c.create_configmap(&ns, "not-in-all", json!({}));
    let all = names(&c.kubectl_ok(&["get", "all", "-n", &ns, "-o", "name"]));
    // What the Deployment controller creates for `web` depends on timing.
    let all: Vec<String> = all
        .into_iter()
        .filter(|n| !n.starts_with("pod/web-") && !n.starts_with("replicaset.apps/web-"))
        .collect();
    assert_eq!(all, ["deployment.apps/web", "pod/solo", "service/web"]);
}

#[test]
fn get_shows_labels_label_columns_sorts_and_prints_custom_columns() {
    let (c, ns) = namespace("get-presentation");
    for (name, app, rank) in [("a", "db", "3"), ("b", "web", "1"), ("c", "web", "2")] {
        c.kubectl_ok_stdin(
            &["create", "-n", &ns, "-f", "-"],
            &pod(name, &[("app", app), ("rank", rank)]),
        );
    }
    let shown = c.kubectl_ok(&["get", "pods", "-n", &ns, "--show-labels"]);
    assert_eq!(
        header(&shown).last().map(String::as_str),
        Some("LABELS"),
        "{shown}"
    );
    assert!(
        row(&shown, "a").is_some_and(|r| r.contains("app=db,rank=3")),
        "{shown}"
    );
    let with_columns = c.kubectl_ok(&["get", "pods", "-n", &ns, "-L", "app,rank"]);
    assert!(header(&with_columns).ends_with(&["APP".to_string(), "RANK".to_string()]));
    assert!(
        row(&with_columns, "b").is_some_and(|r| columns(r).ends_with(&["web".into(), "1".into()])),
        "{with_columns}"
    );
    let sorted = c.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        &ns,
        "--sort-by=.metadata.labels.rank",
        "-o",
        "name",
    ]);
    assert_eq!(
        sorted.lines().collect::<Vec<_>>(),
        ["pod/b", "pod/c", "pod/a"]
    );
    let custom = c.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        &ns,
        "--no-headers",
        "-o",
        "custom-columns=NAME:.metadata.name,APP:.metadata.labels.app",
    ]);
    let rows: Vec<Vec<&str>> = custom
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, [["a", "db"], ["b", "web"], ["c", "web"]]);
}

#[test]
fn get_events_filters_by_involved_object() {
    let (c, ns) = namespace("get-events");
    for (name, api_version, kind, object, reason) in [
        ("e1", "v1", "Pod", "a", "Scheduled"),
        ("e2", "v1", "Pod", "b", "Pulled"),
        ("e3", "apps/v1", "Deployment", "a", "ScalingReplicaSet"),
    ] {
        c.post(
            &format!("/api/v1/namespaces/{ns}/events"),
            &json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name},
                "involvedObject": {"apiVersion": api_version, "kind": kind, "name": object, "namespace": ns},
                "reason": reason, "message": format!("{reason} {object}"), "type": "Normal",
                "count": 1, "source": {"component": "e2e"},
            }),
        )
        .expect(201);
    }
    let select = |selector: &str| {
        names(&c.kubectl_ok(&[
            "get",
            "events",
            "-n",
            &ns,
            "--field-selector",
            selector,
            "-o",
            "name",
        ]))
    };
    assert_eq!(select("involvedObject.name=a"), ["event/e1", "event/e3"]);
    assert_eq!(
        select("involvedObject.name=a,involvedObject.kind=Pod"),
        ["event/e1"]
    );
    assert_eq!(select("reason=Pulled"), ["event/e2"]);
    let for_pod = c.kubectl_ok(&["events", "-n", &ns, "--for", "pod/a"]);
    assert!(for_pod.contains("Scheduled"), "{for_pod}");
    assert!(
        !for_pod.contains("Pulled") && !for_pod.contains("ScalingReplicaSet"),
        "{for_pod}"
    );
}
