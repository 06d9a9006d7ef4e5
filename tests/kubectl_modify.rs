//! kubectl's verbs that change existing objects, against the real server:
//! delete (by name, file, label, `--all`, whole namespaces), label,
//! annotate, patch (strategic, merge, json), edit and scale.

mod common;

use common::manifests::{configmap, deployment, write};
use common::{Cluster, namespace, unique};
use serde_json::{Value, json};

/// The container names of a Deployment's pod template.
fn container_names(deploy: &Value) -> Vec<String> {
    deploy["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn delete_by_name_by_file_by_label_and_all() {
    let (c, ns) = namespace("delete");
    for (name, group) in [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")] {
        c.post(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "labels": {"group": group}}, "data": {"k": "v"}}),
        )
        .expect(201);
    }
    assert_eq!(
        c.kubectl_ok(&["delete", "configmap", "a", "-n", &ns])
            .trim(),
        "configmap \"a\" deleted"
    );
    assert!(!c.exists(&ns, "configmap/a"));

    let err = c.kubectl_err(&["delete", "configmap", "a", "-n", &ns]);
    assert!(err.contains("NotFound"), "{err}");
    c.kubectl_ok(&["delete", "configmap", "a", "-n", &ns, "--ignore-not-found"]);

    let out = c.kubectl_ok(&["delete", "configmap", "-n", &ns, "-l", "group=x"]);
    assert_eq!(
        out.trim(),
        "configmap \"b\" deleted",
        "only the labelled object is deleted"
    );
    assert!(c.exists(&ns, "configmap/c") && c.exists(&ns, "configmap/d"));

    let dir = c.scratch_dir(&ns);
    let file = write(&dir, "e.yaml", &configmap("e", &[("k", "v")]));
    c.kubectl_ok(&["create", "-n", &ns, "-f", &file]);
    assert_eq!(
        c.kubectl_ok(&["delete", "-n", &ns, "-f", &file]).trim(),
        "configmap \"e\" deleted"
    );
    assert!(!c.exists(&ns, "configmap/e"));

    c.kubectl_ok_stdin(
        &["create", "-n", &ns, "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: app, image: file:///app.wasm}]}\n",
    );
    c.kubectl_ok(&["delete", "pod", "p", "-n", &ns, "--timeout=30s"]);
    assert!(
        !c.exists(&ns, "pod/p"),
        "an unscheduled pod is deleted at once"
    );

    let out = c.kubectl_ok(&["delete", "configmaps", "--all", "-n", &ns]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let left = c.kubectl(&["get", "configmaps", "-n", &ns]);
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert!(String::from_utf8_lossy(&left.stderr).contains("No resources found"));
}

#[test]
fn deleting_a_namespace_removes_its_objects_and_then_the_namespace() {
    let c = Cluster::shared();
    let ns = unique("doomed");
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
    ));
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &configmap("cm", &[("k", "v")]),
    );
    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: v}\n",
    );
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &deployment("web", 1));
    c.kubectl_ok_stdin(
        &["create", "-n", &ns, "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: app, image: file:///app.wasm}]}\n",
    );
    // kubectl waits until the namespace is gone.
    let out = c.kubectl_ok(&["delete", "namespace", &ns, "--timeout=60s"]);
    assert_eq!(out.trim(), format!("namespace \"{ns}\" deleted"));
    let err = c.kubectl_err(&["get", "namespace", &ns]);
    assert!(err.contains("NotFound"), "{err}");
    for path in [
        format!("/api/v1/namespaces/{ns}/configmaps"),
        format!("/api/v1/namespaces/{ns}/secrets"),
        format!("/api/v1/namespaces/{ns}/pods"),
        format!("/apis/apps/v1/namespaces/{ns}/deployments"),
    ] {
        let list = c.get(&path);
        let items = list.expect(200)["items"].as_array().map(Vec::len);
        assert_eq!(
            items,
            Some(0),
            "{path} still lists objects after the namespace was deleted: {}",
            list.text
        );
    }
    let create = c.kubectl_err_stdin(&["create", "-n", &ns, "-f", "-"], &configmap("late", &[]));
    assert!(
        create.contains("NotFound"),
        "no objects in a deleted namespace: {create}"
    );
}

#[test]
fn label_adds_refuses_silent_overwrite_and_removes() {
    let (c, ns) = namespace("label");
    c.kubectl_ok_stdin(
        &["create", "-n", &ns, "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\nspec: {containers: [{name: app, image: file:///app.wasm}]}\n",
    );
    assert_eq!(
        c.kubectl_ok(&["label", "pod", "web", "-n", &ns, "env=prod"])
            .trim(),
        "pod/web labeled"
    );
    assert_eq!(c.jsonpath(&ns, "pod/web", "{.metadata.labels.env}"), "prod");
    let err = c.kubectl_err(&["label", "pod", "web", "-n", &ns, "env=dev"]);
    assert!(err.contains("--overwrite"), "{err}");
    assert_eq!(c.jsonpath(&ns, "pod/web", "{.metadata.labels.env}"), "prod");
    c.kubectl_ok(&["label", "pod", "web", "-n", &ns, "env=dev", "--overwrite"]);
    assert_eq!(c.jsonpath(&ns, "pod/web", "{.metadata.labels.env}"), "dev");
    assert_eq!(
        c.kubectl_ok(&["label", "pod", "web", "-n", &ns, "env-"])
            .trim(),
        "pod/web unlabeled"
    );
    let labels = c.get_json(&ns, "pod/web")["metadata"]["labels"].clone();
    assert_eq!(labels, serde_json::json!({"app": "web"}));

    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &deployment("d", 1));
    c.kubectl_ok(&["label", "deployments,pods", "--all", "-n", &ns, "team=edge"]);
    assert_eq!(
        c.jsonpath(&ns, "deployment/d", "{.metadata.labels.team}"),
        "edge"
    );
    assert_eq!(
        c.jsonpath(&ns, "pod/web", "{.metadata.labels.team}"),
        "edge"
    );
    // kubectl checks label syntax itself; the server checks it as well.
    let bad = r#"{"metadata":{"labels":{"team":"not valid!"}}}"#;
    let invalid = c.kubectl_err(&[
        "patch", "pod", "web", "-n", &ns, "--type", "merge", "-p", bad,
    ]);
    assert!(
        invalid.contains("is invalid") && invalid.contains("metadata.labels"),
        "{invalid}"
    );
    assert_eq!(
        c.jsonpath(&ns, "pod/web", "{.metadata.labels.team}"),
        "edge"
    );
}

#[test]
fn annotate_adds_refuses_silent_overwrite_and_removes() {
    let (c, ns) = namespace("annotate");
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &deployment("web", 1));
    assert_eq!(
        c.kubectl_ok(&[
            "annotate",
            "deployment",
            "web",
            "-n",
            &ns,
            "note=first version"
        ])
        .trim(),
        "deployment.apps/web annotated"
    );
    assert_eq!(
        c.jsonpath(&ns, "deployment/web", "{.metadata.annotations.note}"),
        "first version"
    );
    let err = c.kubectl_err(&["annotate", "deployment", "web", "-n", &ns, "note=second"]);
    assert!(err.contains("--overwrite"), "{err}");
    c.kubectl_ok(&[
        "annotate",
        "deployment",
        "web",
        "-n",
        &ns,
        "note=second",
        "--overwrite",
    ]);
    assert_eq!(
        c.jsonpath(&ns, "deployment/web", "{.metadata.annotations.note}"),
        "second"
    );
    c.kubectl_ok(&["annotate", "deployment", "web", "-n", &ns, "note-"]);
    let annotations = c.get_json(&ns, "deployment/web")["metadata"]["annotations"].clone();
    assert!(annotations.get("note").is_none(), "{annotations}");
    c.kubectl_ok(&["annotate", "namespace", &ns, "owner=e2e"]);
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "namespace",
            &ns,
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        "e2e"
    );
}

const PATCH_BASE: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "file:///app.wasm"}]
"#;

#[test]
fn patch_strategic_by_default_merges_containers_by_name() {
    let (c, ns) = namespace("patch-smp");
    c.apply(&PATCH_BASE.replace("name: web}", &format!("name: web, namespace: {ns}}}")));
    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"file:///side.wasm"}]}}}}"#;
    assert_eq!(
        c.kubectl_ok(&["patch", "deployment", "web", "-n", &ns, "-p", patch])
            .trim(),
        "deployment.apps/web patched"
    );
    // Kubernetes puts patch-only items before the live ones; the point is
    // that the list was merged by name, not replaced.
    assert_eq!(
        sorted(container_names(&c.get_json(&ns, "deployment/web"))),
        ["app", "sidecar"]
    );
    let update = r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"file:///app-v2.wasm"}]}}}}"#;
    c.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        &ns,
        "--type",
        "strategic",
        "-p",
        update,
    ]);
    let d = c.get_json(&ns, "deployment/web");
    assert_eq!(sorted(container_names(&d)), ["app", "sidecar"]);
    let images: Vec<(&str, &str)> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or(""),
                        c["image"].as_str().unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        images.contains(&("app", "file:///app-v2.wasm"))
            && images.contains(&("sidecar", "file:///side.wasm")),
        "the patch changed only the named container: {images:?}"
    );
    let delete =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#;
    c.kubectl_ok(&["patch", "deployment", "web", "-n", &ns, "-p", delete]);
    assert_eq!(container_names(&c.get_json(&ns, "deployment/web")), ["app"]);
    // kubectl reports "(no change)" when the object it read before the
    // patch equals the answer; the Deployment controller may write the
    // status in between while it rolls the change above out, so look
    // until it has settled.
    let mut noop = String::new();
    let settled = common::eventually(std::time::Duration::from_secs(30), || {
        noop = c.kubectl_ok(&[
            "patch",
            "deployment",
            "web",
            "-n",
            &ns,
            "-p",
            r#"{"spec":{"replicas":1}}"#,
        ]);
        (noop.trim() == "deployment.apps/web patched (no change)").then_some(())
    });
    assert!(settled.is_some(), "{noop}");
}

#[test]
fn patch_merge_replaces_lists_and_null_removes_keys() {
    let (c, ns) = namespace("patch-merge");
    c.apply(&PATCH_BASE.replace("name: web}", &format!("name: web, namespace: {ns}}}")));
    let patch = r#"{"spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"sidecar","image":"file:///side.wasm"}]}}}}"#;
    c.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        &ns,
        "--type",
        "merge",
        "-p",
        patch,
    ]);
    let d = c.get_json(&ns, "deployment/web");
    assert_eq!(
        container_names(&d),
        ["sidecar"],
        "a JSON merge patch replaces the list"
    );
    assert_eq!(d["spec"]["replicas"], 2);
    c.create_configmap(&ns, "cm", json!({"a": "1", "b": "2"}));
    c.kubectl_ok(&[
        "patch",
        "configmap",
        "cm",
        "-n",
        &ns,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"a":null,"c":"3"}}"#,
    ]);
    assert_eq!(
        c.get_json(&ns, "configmap/cm")["data"],
        serde_json::json!({"b": "2", "c": "3"})
    );
}

#[test]
fn patch_json_applies_operations_in_order() {
    let (c, ns) = namespace("patch-json");
    c.apply(&PATCH_BASE.replace("name: web}", &format!("name: web, namespace: {ns}}}")));
    let ops = r#"[{"op":"replace","path":"/spec/replicas","value":4},
                  {"op":"add","path":"/metadata/labels","value":{"patched":"yes"}},
                  {"op":"add","path":"/spec/template/spec/containers/-","value":{"name":"sidecar","image":"file:///side.wasm"}}]"#;
    c.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        &ns,
        "--type",
        "json",
        "-p",
        ops,
    ]);
    let d = c.get_json(&ns, "deployment/web");
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(d["metadata"]["labels"]["patched"], "yes");
    assert_eq!(container_names(&d), ["app", "sidecar"]);
    let failing = r#"[{"op":"test","path":"/spec/replicas","value":99},{"op":"replace","path":"/spec/replicas","value":7}]"#;
    c.kubectl_err(&[
        "patch",
        "deployment",
        "web",
        "-n",
        &ns,
        "--type",
        "json",
        "-p",
        failing,
    ]);
    assert_eq!(
        c.jsonpath(&ns, "deployment/web", "{.spec.replicas}"),
        "4",
        "a failed test op applies nothing"
    );
}

#[test]
fn edit_saves_what_the_editor_changed() {
    let (c, ns) = namespace("edit");
    c.create_configmap(&ns, "settings", json!({"color": "blue"}));
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &deployment("web", 1));
    let dir = c.scratch_dir(&ns);
    let script = dir.join("editor.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nsed -i -e 's/color: blue/color: green/' -e 's/^  replicas: 1$/  replicas: 3/' \"$1\"\n",
    )
    .expect("writing the editor script");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    for (what, edited) in [
        ("configmap/settings", "configmap/settings edited"),
        ("deployment/web", "deployment.apps/web edited"),
    ] {
        let args = ["edit", what, "-n", ns.as_str()];
        let mut cmd = c.kubectl_command(&args);
        cmd.env("EDITOR", &script).env_remove("KUBE_EDITOR");
        assert_eq!(c.kubectl_run_ok(cmd, &args).trim(), edited);
    }
    assert_eq!(
        c.jsonpath(&ns, "configmap/settings", "{.data.color}"),
        "green"
    );
    assert_eq!(c.jsonpath(&ns, "deployment/web", "{.spec.replicas}"), "3");
}

#[test]
fn scale_sets_replicas_through_the_scale_subresource() {
    let (c, ns) = namespace("scale");
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &deployment("web", 1));
    assert_eq!(
        c.kubectl_ok(&["scale", "deployment/web", "-n", &ns, "--replicas=5"])
            .trim(),
        "deployment.apps/web scaled"
    );
    assert_eq!(c.jsonpath(&ns, "deploy/web", "{.spec.replicas}"), "5");
    let scale = c.get(&format!(
        "/apis/apps/v1/namespaces/{ns}/deployments/web/scale"
    ));
    let scale = scale.expect(200);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 5);
    let err = c.kubectl_err(&[
        "scale",
        "deployment/web",
        "-n",
        &ns,
        "--current-replicas=2",
        "--replicas=1",
    ]);
    assert!(!err.is_empty());
    assert_eq!(
        c.jsonpath(&ns, "deploy/web", "{.spec.replicas}"),
        "5",
        "a failed precondition changes nothing"
    );

    c.apply(&format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {ns}}}
spec:
  serviceName: db
  replicas: 1
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{{name: app, image: file:///app.wasm}}]}}
---
apiVersion: v1
kind: ReplicationController
metadata: {{name: legacy, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{app: legacy}}
  template:
    metadata: {{labels: {{app: legacy}}}}
    spec: {{containers: [{{name: app, image: file:///app.wasm}}]}}
"
    ));
    c.kubectl_ok(&["scale", "statefulset/db", "-n", &ns, "--replicas=3"]);
    assert_eq!(c.jsonpath(&ns, "sts/db", "{.spec.replicas}"), "3");
    c.kubectl_ok(&["scale", "rc/legacy", "-n", &ns, "--replicas=2"]);
    assert_eq!(c.jsonpath(&ns, "rc/legacy", "{.spec.replicas}"), "2");
}

#[test]
fn replace_puts_the_whole_object_and_force_recreates_it() {
    let (c, ns) = namespace("replace");
    c.create_configmap(&ns, "cfg", json!({"a": "1", "b": "2"}));
    let out = c.kubectl_ok_stdin(
        &["replace", "-n", &ns, "-f", "-"],
        &configmap("cfg", &[("c", "3")]),
    );
    assert_eq!(out.trim(), "configmap/cfg replaced");
    assert_eq!(c.get_json(&ns, "configmap/cfg")["data"], json!({"c": "3"}));
    let uid = c.jsonpath(&ns, "configmap/cfg", "{.metadata.uid}");
    c.kubectl_ok_stdin(
        &["replace", "--force", "-n", &ns, "-f", "-"],
        &configmap("cfg", &[("d", "4")]),
    );
    let recreated = c.get_json(&ns, "configmap/cfg");
    assert_eq!(recreated["data"], json!({"d": "4"}));
    assert_ne!(
        recreated["metadata"]["uid"].as_str(),
        Some(uid.as_str()),
        "--force deletes and creates anew"
    );
    let err = c.kubectl_err_stdin(
        &["replace", "-n", &ns, "-f", "-"],
        &configmap("missing", &[]),
    );
    assert!(err.contains("NotFound"), "{err}");
}
