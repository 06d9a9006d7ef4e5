//! `kubectl get` prints the columns kubectl users expect for every served
//! kind (the server's `Table` responses), for objects applied in one
//! multi-document manifest.

mod common;

use common::manifests::{every_cluster_kind, every_kind};
use common::namespace;
use common::table::{columns, header, in_order, row};

#[test]
fn get_prints_the_usual_columns_for_every_kind() {
    let (c, ns) = namespace("get-columns");
    let mut failures = Vec::new();
    for manifest in [every_kind(&ns), every_cluster_kind(&ns)] {
        let out = c.kubectl_stdin(&["apply", "-n", &ns, "-f", "-"], &manifest);
        if !out.status.success() {
            failures.push(format!(
                "apply of every kind failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let pv = format!("pv-{ns}");
    let cr = format!("cr-{ns}");
    let crb = format!("crb-{ns}");
    let node = format!("node-{ns}");
    let crb_role = format!("ClusterRole/{cr}");
    // (resource, name, expected columns in order, expected leading cells)
    let cases: Vec<(&str, &str, Vec<&str>, Vec<&str>)> = vec![
        (
            "pods",
            "solo",
            vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            vec!["solo", "0/1", "Pending", "0"],
        ),
        (
            "deployments",
            "web",
            vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            // The counts after READY follow the controllers' progress.
            vec!["web", "0/3"],
        ),
        (
            "replicasets",
            "web-rs",
            vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            vec!["web-rs", "2"],
        ),
        (
            "statefulsets",
            "db",
            vec!["NAME", "READY", "AGE"],
            vec!["db", "0/2"],
        ),
        (
            "daemonsets",
            "agent",
            vec![
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE SELECTOR",
                "AGE",
            ],
            // The counts follow the DaemonSet controller and the nodes
            // this manifest and other tests created.
            vec!["agent"],
        ),
        (
            "replicationcontrollers",
            "legacy",
            vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            vec!["legacy", "1"],
        ),
        (
            "jobs",
            "once",
            vec!["NAME", "COMPLETIONS", "DURATION", "AGE"],
            vec!["once"],
        ),
        (
            "cronjobs",
            "nightly",
            vec![
                "NAME",
                "SCHEDULE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            vec!["nightly", "0 3 * * *"],
        ),
        (
            "services",
            "web",
            vec![
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ],
            vec!["web", "ClusterIP"],
        ),
        (
            "endpoints",
            "manual",
            vec!["NAME", "ENDPOINTS", "AGE"],
            vec!["manual", "10.1.2.3:8080"],
        ),
        (
            "configmaps",
            "settings",
            vec!["NAME", "DATA", "AGE"],
            vec!["settings", "2"],
        ),
        (
            "secrets",
            "creds",
            vec!["NAME", "TYPE", "DATA", "AGE"],
            vec!["creds", "Opaque", "1"],
        ),
        (
            "serviceaccounts",
            "robot",
            vec!["NAME", "AGE"],
            vec!["robot"],
        ),
        (
            "persistentvolumeclaims",
            "data",
            vec![
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "ACCESS MODES",
                "STORAGECLASS",
                "AGE",
            ],
            vec!["data", "Pending"],
        ),
        (
            "leases",
            "leader",
            vec!["NAME", "HOLDER", "AGE"],
            vec!["leader", "node-a"],
        ),
        (
            "roles",
            "reader",
            vec!["NAME", "CREATED AT"],
            vec!["reader"],
        ),
        (
            "rolebindings",
            "read-pods",
            vec!["NAME", "ROLE", "AGE"],
            vec!["read-pods", "Role/reader"],
        ),
        (
            "controllerrevisions",
            "db-rev1",
            vec!["NAME", "CONTROLLER", "REVISION", "AGE"],
            vec!["db-rev1"],
        ),
        (
            "persistentvolumes",
            &pv,
            vec![
                "NAME",
                "CAPACITY",
                "ACCESS MODES",
                "RECLAIM POLICY",
                "STATUS",
                "CLAIM",
                "STORAGECLASS",
                "AGE",
            ],
            vec![&pv, "1Gi", "RWO", "Retain"],
        ),
        ("clusterroles", &cr, vec!["NAME", "CREATED AT"], vec![&cr]),
        (
            "clusterrolebindings",
            &crb,
            vec!["NAME", "ROLE", "AGE"],
            vec![&crb, &crb_role],
        ),
        (
            "nodes",
            &node,
            vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
            vec![&node],
        ),
    ];
    for (resource, name, expected_columns, expected_cells) in cases {
        let out = c.kubectl(&["get", resource, name, "-n", &ns]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            failures.push(format!(
                "get {resource} {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let header = header(&stdout);
        if !in_order(&header, &expected_columns) {
            failures.push(format!(
                "get {resource}: columns {header:?}, expected {expected_columns:?}"
            ));
        }
        let cells = row(&stdout, name).map(columns).unwrap_or_default();
        let joined = cells.join(" ");
        let want = expected_cells.join(" ");
        if !joined.starts_with(&want) {
            failures.push(format!(
                "get {resource} {name}: row {cells:?}, expected to start with {want:?}"
            ));
        }
    }
    let svc = c.kubectl_ok(&["get", "svc", "web", "-n", &ns]);
    let svc_cells = row(&svc, "web").map(columns).unwrap_or_default();
    if !svc_cells.get(2).is_some_and(|ip| ip.starts_with("10.43."))
        || svc_cells.get(4).map(String::as_str) != Some("80/TCP")
    {
        failures.push(format!(
            "get svc: expected a 10.43.x.x cluster IP and 80/TCP: {svc}"
        ));
    }
    let events = c.kubectl(&["get", "events", "-n", &ns]);
    let ev = String::from_utf8_lossy(&events.stdout);
    let header = header(&ev);
    if !in_order(
        &header,
        &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
    ) || !ev.contains("hello from the test")
        || !ev.contains("pod/web-0")
    {
        failures.push(format!(
            "get events: {ev}{}",
            String::from_utf8_lossy(&events.stderr)
        ));
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
