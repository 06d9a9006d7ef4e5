//! kubectl's object generators (`kubectl create <kind> ...`, `run`,
//! `expose`) against the real server. They go through kubectl's typed
//! clientset, which sends protobuf request bodies.

mod common;

use common::{Cluster, namespace, unique};
use serde_json::json;

#[test]
fn create_generators_make_namespace_configmap_and_secret() {
    let c = Cluster::shared();
    let ns = unique("generated");
    assert_eq!(
        c.kubectl_ok(&["create", "namespace", &ns]).trim(),
        format!("namespace/{ns} created")
    );
    assert_eq!(
        c.kubectl_ok(&["get", "namespace", &ns, "-o", "jsonpath={.status.phase}"]),
        "Active"
    );
    let out = c.kubectl_ok(&[
        "create",
        "configmap",
        "cfg",
        "-n",
        &ns,
        "--from-literal=a=1",
        "--from-literal=b=two words",
    ]);
    assert_eq!(out.trim(), "configmap/cfg created");
    assert_eq!(
        c.get_json(&ns, "configmap/cfg")["data"],
        json!({"a": "1", "b": "two words"})
    );
    let file = c.scratch_dir(&ns).join("settings.ini");
    std::fs::write(&file, "[main]\nmode = fast\n").expect("writing a config file");
    c.kubectl_ok(&[
        "create",
        "configmap",
        "files",
        "-n",
        &ns,
        &format!("--from-file={}", file.display()),
    ]);
    assert_eq!(
        c.get_json(&ns, "configmap/files")["data"]["settings.ini"],
        "[main]\nmode = fast\n"
    );
    let out = c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        &ns,
        "--from-literal=password=hunter2",
    ]);
    assert_eq!(out.trim(), "secret/creds created");
    let secret = c.get_json(&ns, "secret/creds");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret["data"]["password"], "aHVudGVyMg==",
        "secret data is base64 of the literal"
    );
}

#[test]
fn create_generators_make_workloads_services_and_rbac() {
    let (c, ns) = namespace("generators");
    let cr = format!("cr-{ns}");
    let crb = format!("crb-{ns}");
    let cluster_role = format!("--clusterrole={cr}");
    // (arguments, expected output)
    let commands: Vec<(Vec<&str>, String)> = vec![
        (
            vec![
                "create",
                "deployment",
                "web",
                "--image=file:///app.wasm",
                "--replicas=2",
            ],
            "deployment.apps/web created".into(),
        ),
        (
            vec!["create", "service", "clusterip", "web", "--tcp=80:8080"],
            "service/web created".into(),
        ),
        (
            vec!["create", "serviceaccount", "robot"],
            "serviceaccount/robot created".into(),
        ),
        (
            vec!["create", "job", "once", "--image=file:///app.wasm"],
            "job.batch/once created".into(),
        ),
        (
            vec![
                "create",
                "cronjob",
                "nightly",
                "--image=file:///app.wasm",
                "--schedule=0 3 * * *",
            ],
            "cronjob.batch/nightly created".into(),
        ),
        (
            vec![
                "create",
                "role",
                "reader",
                "--verb=get,list",
                "--resource=pods",
            ],
            "role.rbac.authorization.k8s.io/reader created".into(),
        ),
        (
            vec![
                "create",
                "rolebinding",
                "read-pods",
                "--role=reader",
                "--user=alice",
            ],
            "rolebinding.rbac.authorization.k8s.io/read-pods created".into(),
        ),
        (
            vec![
                "create",
                "clusterrole",
                &cr,
                "--verb=get",
                "--resource=nodes",
            ],
            format!("clusterrole.rbac.authorization.k8s.io/{cr} created"),
        ),
        (
            vec![
                "create",
                "clusterrolebinding",
                &crb,
                &cluster_role,
                "--user=alice",
            ],
            format!("clusterrolebinding.rbac.authorization.k8s.io/{crb} created"),
        ),
        (
            vec!["run", "solo", "--image=app:v1", "--restart=Never"],
            "pod/solo created".into(),
        ),
        (
            vec![
                "expose",
                "deployment",
                "web",
                "--name=web-exposed",
                "--port=80",
                "--target-port=8080",
            ],
            "service/web-exposed exposed".into(),
        ),
    ];
    let mut failures = Vec::new();
    for (args, expected) in &commands {
        let mut full = args.clone();
        full.extend(["-n", ns.as_str()]);
        let out = c.kubectl(&full);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || stdout.trim() != expected {
            failures.push(format!(
                "kubectl {}: expected {expected:?}, got {:?} {}",
                full.join(" "),
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} generators failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let deploy = c.get_json(&ns, "deployment/web");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "file:///app.wasm"
    );
    let svc = c.get_json(&ns, "service/web");
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.43.")),
        "{svc}"
    );
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let exposed = c.get_json(&ns, "service/web-exposed");
    assert_eq!(exposed["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(
        c.jsonpath(&ns, "cronjob/nightly", "{.spec.schedule}"),
        "0 3 * * *"
    );
    assert_eq!(
        c.jsonpath(&ns, "job/once", "{.spec.template.spec.restartPolicy}"),
        "Never"
    );
    assert_eq!(
        c.jsonpath(&ns, "role/reader", "{.rules[0].verbs}"),
        r#"["get","list"]"#
    );
    assert_eq!(
        c.jsonpath(&ns, "rolebinding/read-pods", "{.subjects[0].name}"),
        "alice"
    );
    assert_eq!(
        c.jsonpath(&ns, "pod/solo", "{.spec.restartPolicy}"),
        "Never"
    );
}
