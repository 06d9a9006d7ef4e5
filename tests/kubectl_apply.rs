//! `kubectl create -f` and `kubectl apply -f` against the real server, with
//! kubectl's default (strict, server-side) validation: files, stdin,
//! multi-document streams, directories, three-way merges and dry runs.

mod common;

use common::manifests::{configmap, every_kind, write};
use common::namespace;
use serde_json::Value;

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

#[test]
fn create_from_a_file_and_from_stdin() {
    let (c, ns) = namespace("create-f");
    let dir = c.scratch_dir(&ns);
    let file = write(&dir, "cm.yaml", &configmap("from-file", &[("k", "v")]));
    let out = c.kubectl_ok(&["create", "-n", &ns, "-f", &file]);
    assert_eq!(out.trim(), "configmap/from-file created");
    let json_file = write(
        &dir,
        "pod.json",
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "from-json"},
            "spec": {"containers": [{"name": "app", "image": "file:///app.wasm"}]}}"#,
    );
    assert_eq!(
        c.kubectl_ok(&["create", "-n", &ns, "-f", &json_file])
            .trim(),
        "pod/from-json created"
    );
    let out = c.kubectl_ok_stdin(
        &["create", "-n", &ns, "-f", "-"],
        &configmap("from-stdin", &[("k", "w")]),
    );
    assert_eq!(out.trim(), "configmap/from-stdin created");
    assert_eq!(c.jsonpath(&ns, "configmap/from-file", "{.data.k}"), "v");
    assert_eq!(c.jsonpath(&ns, "configmap/from-stdin", "{.data.k}"), "w");
    assert_eq!(
        c.jsonpath(&ns, "pod/from-json", "{.spec.containers[0].name}"),
        "app"
    );
}

#[test]
fn create_rejects_an_unknown_field_and_names_it() {
    let (c, ns) = namespace("create-strict");
    let manifest = "apiVersion: v1
kind: Pod
metadata:
  name: typo
spec:
  containers:
  - name: app
    image: file:///app.wasm
    imagePullPolisy: Always
";
    let err = c.kubectl_err_stdin(&["create", "-n", &ns, "-f", "-"], manifest);
    assert!(err.contains("unknown field"), "{err}");
    assert!(
        err.contains("spec.containers[0].imagePullPolisy"),
        "the error names the field: {err}"
    );
    assert!(
        !c.exists(&ns, "pod/typo"),
        "a rejected object is not stored"
    );

    let deploy = "apiVersion: apps/v1
kind: Deployment
metadata: {name: typo}
spec:
  selector: {matchLabels: {app: typo}}
  template:
    metadata: {labels: {app: typo}}
    spec:
      containers: [{name: app, image: file:///app.wasm}]
      restartPolicyy: Always
";
    let err = c.kubectl_err_stdin(&["apply", "-n", &ns, "-f", "-"], deploy);
    assert!(
        err.contains("spec.template.spec.restartPolicyy"),
        "apply names the unknown field too: {err}"
    );

    // Without validation the unknown field is dropped and the object stored.
    c.kubectl_ok_stdin(
        &["create", "--validate=false", "-n", &ns, "-f", "-"],
        manifest,
    );
    let pod = c.get_json(&ns, "pod/typo");
    assert!(
        pod["spec"]["containers"][0]
            .get("imagePullPolisy")
            .is_none(),
        "{pod}"
    );
}

#[test]
fn create_of_an_existing_object_reports_already_exists() {
    let (c, ns) = namespace("create-exists");
    let cm = configmap("twice", &[("k", "v")]);
    c.kubectl_ok_stdin(&["create", "-n", &ns, "-f", "-"], &cm);
    let err = c.kubectl_err_stdin(&["create", "-n", &ns, "-f", "-"], &cm);
    assert!(
        err.contains("AlreadyExists") && err.contains("\"twice\" already exists"),
        "{err}"
    );
}

const DEPLOY_V1: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, extra: "yes"}
  annotations: {team: a}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: file:///app-v1.wasm
        env: [{name: A, value: "1"}]
      - name: sidecar
        image: file:///side.wasm
"#;

const DEPLOY_V2: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
  annotations: {team: b}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: file:///app-v2.wasm
"#;

#[test]
fn apply_creates_then_updates_and_removes_fields_dropped_from_the_manifest() {
    let (c, ns) = namespace("apply-update");
    assert_eq!(
        c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], DEPLOY_V1)
            .trim(),
        "deployment.apps/web created"
    );
    let v1 = c.get_json(&ns, "deployment/web");
    assert_eq!(container_names(&v1), ["app", "sidecar"]);
    let last_applied =
        v1["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap_or_else(|| panic!("apply records the last applied configuration: {v1}"));
    assert!(
        serde_json::from_str::<Value>(last_applied).is_ok(),
        "{last_applied}"
    );
    // A label set by someone else is not part of the manifest and survives.
    c.kubectl_ok(&["label", "deployment", "web", "-n", &ns, "owner=ops"]);

    assert_eq!(
        c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], DEPLOY_V2)
            .trim(),
        "deployment.apps/web configured"
    );
    let v2 = c.get_json(&ns, "deployment/web");
    let labels = &v2["metadata"]["labels"];
    assert_eq!(labels["app"], "web", "{v2}");
    assert!(
        labels.get("extra").is_none(),
        "a label removed from the manifest is removed: {labels}"
    );
    assert_eq!(
        labels["owner"], "ops",
        "a label not managed by apply is kept: {labels}"
    );
    assert_eq!(v2["metadata"]["annotations"]["team"], "b");
    assert_eq!(v2["spec"]["replicas"], 4);
    assert_eq!(
        container_names(&v2),
        ["app"],
        "a container removed from the manifest is removed"
    );
    let app = &v2["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(app["image"], "file:///app-v2.wasm");
    assert!(
        app.get("env").is_none(),
        "env removed from the manifest is removed: {app}"
    );
    assert!(
        v2["metadata"]["generation"]
            .as_i64()
            .is_some_and(|g| g >= 2),
        "a spec change bumps metadata.generation: {}",
        v2["metadata"]
    );
}

#[test]
fn apply_of_an_unchanged_manifest_reports_unchanged() {
    let (c, ns) = namespace("apply-same");
    let cm = configmap("same", &[("k", "v")]);
    assert_eq!(
        c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &cm)
            .trim(),
        "configmap/same created"
    );
    let rv = c.jsonpath(&ns, "configmap/same", "{.metadata.resourceVersion}");
    assert_eq!(
        c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &cm)
            .trim(),
        "configmap/same unchanged"
    );
    assert_eq!(
        c.jsonpath(&ns, "configmap/same", "{.metadata.resourceVersion}"),
        rv
    );
}

#[test]
fn apply_keeps_server_assigned_fields_of_a_service() {
    let (c, ns) = namespace("apply-svc");
    let svc = |port: u16| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n  selector: {{app: web}}\n  ports: [{{name: http, port: {port}, targetPort: 8080}}]\n"
        )
    };
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &svc(80));
    let ip = c.jsonpath(&ns, "service/web", "{.spec.clusterIP}");
    assert!(ip.starts_with("10.43."), "{ip}");
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &svc(81));
    assert_eq!(
        c.jsonpath(&ns, "service/web", "{.spec.clusterIP}"),
        ip,
        "re-apply keeps the cluster IP"
    );
    assert_eq!(
        c.jsonpath(&ns, "service/web", "{.spec.ports[*].port}"),
        "81"
    );
}

#[test]
fn apply_of_a_multi_document_stream_applies_each_object() {
    let (c, ns) = namespace("apply-multi");
    let manifest = format!(
        "{}---\n# a comment-only document is skipped\n---\n{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{token: abc}}\n",
        configmap("one", &[("a", "1")]),
        configmap("two", &[("b", "2")])
    );
    let out = c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &manifest);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "configmap/one created",
            "configmap/two created",
            "secret/s created"
        ],
        "{out}"
    );
    assert_eq!(
        c.jsonpath(&ns, "secret/s", "{.data.token}"),
        "YWJj",
        "stringData is stored base64-encoded in data"
    );
}

#[test]
fn apply_of_a_directory_applies_every_manifest_in_it() {
    let (c, ns) = namespace("apply-dir");
    let dir = c.scratch_dir(&ns).join("manifests");
    std::fs::create_dir_all(&dir).expect("mkdir");
    write(&dir, "a.yaml", &configmap("a", &[("k", "a")]));
    write(
        &dir,
        "b.json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"k": "b"}}"#,
    );
    write(
        &dir,
        "c.yml",
        &format!(
            "{}---\n{}",
            configmap("c1", &[("k", "c1")]),
            configmap("c2", &[("k", "c2")])
        ),
    );
    write(
        &dir,
        "notes.txt",
        "not a manifest: kubectl skips files without a manifest extension\n",
    );
    let dir_arg = dir.display().to_string();
    let out = c.kubectl_ok(&["apply", "-n", &ns, "-f", &dir_arg]);
    for name in ["a", "b", "c1", "c2"] {
        assert!(out.contains(&format!("configmap/{name} created")), "{out}");
        assert_eq!(
            c.jsonpath(&ns, &format!("configmap/{name}"), "{.data.k}"),
            name
        );
    }
    let again = c.kubectl_ok(&["apply", "-n", &ns, "-f", &dir_arg]);
    assert_eq!(
        again.lines().filter(|l| l.ends_with(" unchanged")).count(),
        4,
        "{again}"
    );
}

#[test]
fn apply_dry_run_server_validates_but_stores_nothing() {
    let (c, ns) = namespace("apply-dry");
    let out = c.kubectl_ok_stdin(
        &["apply", "--dry-run=server", "-n", &ns, "-f", "-"],
        &configmap("dry", &[("k", "v1")]),
    );
    assert_eq!(out.trim(), "configmap/dry created (server dry run)");
    assert!(
        !c.exists(&ns, "configmap/dry"),
        "a dry-run create stores nothing"
    );

    c.kubectl_ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &configmap("dry", &[("k", "v1")]),
    );
    let rv = c.jsonpath(&ns, "configmap/dry", "{.metadata.resourceVersion}");
    let out = c.kubectl_ok_stdin(
        &["apply", "--dry-run=server", "-n", &ns, "-f", "-"],
        &configmap("dry", &[("k", "v2")]),
    );
    assert_eq!(out.trim(), "configmap/dry configured (server dry run)");
    assert_eq!(
        c.jsonpath(&ns, "configmap/dry", "{.data.k}"),
        "v1",
        "a dry-run update changes nothing"
    );
    assert_eq!(
        c.jsonpath(&ns, "configmap/dry", "{.metadata.resourceVersion}"),
        rv
    );

    let printed = c.kubectl_ok_stdin(
        &[
            "apply",
            "--dry-run=server",
            "-o",
            "jsonpath={.data.k}",
            "-n",
            &ns,
            "-f",
            "-",
        ],
        &configmap("dry", &[("k", "v3")]),
    );
    assert_eq!(
        printed, "v3",
        "the dry run returns the object as it would be stored"
    );

    // Validation still runs on a dry run.
    let err = c.kubectl_err_stdin(
        &["apply", "--dry-run=server", "-n", &ns, "-f", "-"],
        &configmap("Bad_Name", &[]),
    );
    assert!(err.contains("Invalid") || err.contains("invalid"), "{err}");
}

#[test]
fn apply_reconfigures_every_kind_and_then_finds_nothing_to_change() {
    let (c, ns) = namespace("apply-every");
    let v1 = every_kind(&ns);
    let documents = v1.split("\n---\n").count();
    let created = c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &v1);
    assert_eq!(
        created.lines().filter(|l| l.ends_with(" created")).count(),
        documents,
        "{created}"
    );
    let v2 = v1.replace(
        "metadata: {name: ",
        "metadata: {labels: {rev: \"2\"}, name: ",
    );
    let mut failures = Vec::new();
    for (round, expected) in [(1, " configured"), (2, " unchanged")] {
        let out = c.kubectl_stdin(&["apply", "-n", &ns, "-f", "-"], &v2);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let wrong: Vec<&str> = stdout.lines().filter(|l| !l.ends_with(expected)).collect();
        if !out.status.success() || !wrong.is_empty() || stdout.lines().count() != documents {
            failures.push(format!(
                "apply #{round} should print \"<object>{expected}\" for all {documents} objects; \
                 other lines: {wrong:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let labelled = c.kubectl_ok(&[
        "get",
        "deploy,rs,sts,ds,rc,jobs,cronjobs,svc,endpoints,cm,secrets,sa,pvc,leases,roles,\
         rolebindings,controllerrevisions,events,pods",
        "-n",
        &ns,
        "-l",
        "rev=2",
        "-o",
        "name",
    ]);
    // The Endpoints controller's `endpoints/web` carries its Service's
    // labels too, as in Kubernetes.
    let applied = labelled.lines().filter(|l| *l != "endpoints/web").count();
    assert_eq!(applied, documents, "{labelled}");
}

#[test]
fn diff_shows_what_apply_would_change_without_changing_it() {
    let (c, ns) = namespace("diff");
    let v1 = configmap("cfg", &[("k", "v1")]);
    c.kubectl_ok_stdin(&["apply", "-n", &ns, "-f", "-"], &v1);
    let same = c.kubectl_stdin(&["diff", "-n", &ns, "-f", "-"], &v1);
    assert!(
        same.status.success() && same.stdout.is_empty(),
        "no difference for the applied manifest: {}{}",
        String::from_utf8_lossy(&same.stdout),
        String::from_utf8_lossy(&same.stderr)
    );
    let changed = c.kubectl_stdin(
        &["diff", "-n", &ns, "-f", "-"],
        &configmap("cfg", &[("k", "v2")]),
    );
    let stdout = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(
        changed.status.code(),
        Some(1),
        "kubectl diff exits 1 on a difference: {stdout}{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    assert!(
        stdout.contains("-  k: v1") && stdout.contains("+  k: v2"),
        "{stdout}"
    );
    assert_eq!(c.jsonpath(&ns, "configmap/cfg", "{.data.k}"), "v1");
}
