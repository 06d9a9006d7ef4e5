use serde_json::json;

use super::*;
use crate::scheduler::testing::{info, node, pod, pod_requesting, state};

/// Whether `pod` fits the only node of `state`, and the reasons if not.
fn check(p: &k8s_openapi::api::core::v1::Pod, state: &ClusterState) -> Result<(), Vec<String>> {
    let pod_info = info(p);
    let anti = AntiAffinity::new(&pod_info, state);
    let node = state.nodes.values().next().expect("a node");
    let mut reasons = Vec::new();
    let spec = p.spec.as_ref().expect("a spec");
    if fits(spec, &pod_info, node, &anti, &mut reasons) {
        Ok(())
    } else {
        Err(reasons.iter().map(ToString::to_string).collect())
    }
}

#[test]
fn unready_and_unschedulable_nodes_take_only_pods_tolerating_it() {
    let not_ready = state(&[node(
        "n",
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
    )]);
    assert_eq!(
        check(&pod("p", json!({})), &not_ready),
        Err(vec![
            "node(s) had untolerated taint {node.kubernetes.io/not-ready: }".to_string()
        ])
    );
    let tolerant = pod(
        "p",
        json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]}}),
    );
    assert_eq!(check(&tolerant, &not_ready), Ok(()));

    let cordoned = state(&[node("n", json!({"spec": {"unschedulable": true}}))]);
    assert_eq!(
        check(&pod("p", json!({})), &cordoned),
        Err(vec!["node(s) were unschedulable".to_string()])
    );
    let tolerant = pod(
        "p",
        json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
    );
    assert_eq!(check(&tolerant, &cordoned), Ok(()));
}

#[test]
fn requests_are_checked_against_what_bound_pods_left() {
    let mut s = state(&[node(
        "n",
        json!({"status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "2"}}}),
    )]);
    assert_eq!(check(&pod_requesting("a", "600m", "512Mi"), &s), Ok(()));
    s.place(info(&pod_requesting("a", "600m", "512Mi")), "n");
    assert_eq!(
        check(&pod_requesting("b", "600m", "600Mi"), &s),
        Err(vec![
            "Insufficient cpu".to_string(),
            "Insufficient memory".to_string()
        ])
    );
    assert_eq!(check(&pod_requesting("b", "400m", "512Mi"), &s), Ok(()));
    s.place(info(&pod_requesting("b", "100m", "1Mi")), "n");
    assert_eq!(
        check(&pod("c", json!({})), &s),
        Err(vec!["Too many pods".to_string()])
    );
}

#[test]
fn node_selector_labels_must_all_match() {
    let s = state(&[node(
        "n",
        json!({"metadata": {"labels": {"disk": "ssd", "zone": "a"}}}),
    )]);
    let selecting = |sel: serde_json::Value| pod("p", json!({"spec": {"nodeSelector": sel}}));
    assert_eq!(check(&selecting(json!({"disk": "ssd"})), &s), Ok(()));
    assert_eq!(
        check(&selecting(json!({"disk": "ssd", "zone": "b"})), &s),
        Err(vec![
            "node(s) didn't match Pod's node affinity/selector".to_string()
        ])
    );
}

#[test]
fn required_node_affinity_operators() {
    let labels = BTreeMap::from([
        ("zone".to_string(), "a".to_string()),
        ("cores".to_string(), "8".to_string()),
    ]);
    let req = |key: &str, op: &str, values: &[&str]| NodeSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: Some(values.iter().map(|v| v.to_string()).collect()),
    };
    let matches = |r: NodeSelectorRequirement| {
        requirement_matches(&r, labels.get(&r.key).map(String::as_str))
    };
    assert!(matches(req("zone", "In", &["a", "b"])));
    assert!(!matches(req("zone", "In", &["b"])));
    assert!(matches(req("zone", "NotIn", &["b"])));
    assert!(matches(req("missing", "NotIn", &["b"])));
    assert!(matches(req("zone", "Exists", &[])));
    assert!(matches(req("missing", "DoesNotExist", &[])));
    assert!(!matches(req("zone", "DoesNotExist", &[])));
    assert!(matches(req("cores", "Gt", &["4"])));
    assert!(!matches(req("cores", "Lt", &["4"])));
    assert!(!matches(req("zone", "Gt", &["4"])), "not an integer");

    let term = |exprs: Vec<NodeSelectorRequirement>, fields: Vec<NodeSelectorRequirement>| {
        NodeSelectorTerm {
            match_expressions: Some(exprs),
            match_fields: Some(fields),
        }
    };
    assert!(term_matches(
        &term(vec![], vec![req("metadata.name", "In", &["n1"])]),
        "n1",
        &labels
    ));
    assert!(!term_matches(
        &term(vec![], vec![req("metadata.name", "NotIn", &["n1"])]),
        "n1",
        &labels
    ));
    assert!(
        !term_matches(&term(vec![], vec![]), "n1", &labels),
        "an empty term matches nothing"
    );
    assert!(
        !term_matches(
            &term(
                vec![req("zone", "In", &["a"]), req("cores", "Lt", &["4"])],
                vec![]
            ),
            "n1",
            &labels
        ),
        "expressions are ANDed"
    );

    // Terms are ORed.
    let s = state(&[node("n", json!({"metadata": {"labels": {"zone": "a"}}}))]);
    let p = pod(
        "p",
        json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
        ]}}}}}),
    );
    assert_eq!(check(&p, &s), Ok(()));
}

#[test]
fn tolerations_follow_kubernetes_matching() {
    let taint = Taint {
        key: "k".into(),
        value: Some("v".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    };
    let tol = |key: Option<&str>, op: Option<&str>, value: Option<&str>, effect: Option<&str>| {
        Toleration {
            key: key.map(Into::into),
            operator: op.map(Into::into),
            value: value.map(Into::into),
            effect: effect.map(Into::into),
            toleration_seconds: None,
        }
    };
    assert!(tolerates(&tol(Some("k"), None, Some("v"), None), &taint));
    assert!(tolerates(
        &tol(Some("k"), Some("Equal"), Some("v"), Some("NoSchedule")),
        &taint
    ));
    assert!(!tolerates(
        &tol(Some("k"), Some("Equal"), Some("w"), None),
        &taint
    ));
    assert!(tolerates(
        &tol(Some("k"), Some("Exists"), None, None),
        &taint
    ));
    assert!(
        tolerates(&tol(None, Some("Exists"), None, None), &taint),
        "tolerates everything"
    );
    assert!(!tolerates(
        &tol(Some("k"), Some("Exists"), None, Some("NoExecute")),
        &taint
    ));

    let tainted = |effect: &str| {
        state(&[node(
            "n",
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": effect}]}}),
        )])
    };
    let plain = pod("p", json!({}));
    assert_eq!(
        check(&plain, &tainted("NoSchedule")),
        Err(vec!["node(s) had untolerated taint {k: v}".to_string()])
    );
    assert!(check(&plain, &tainted("NoExecute")).is_err());
    assert_eq!(
        check(&plain, &tainted("PreferNoSchedule")),
        Ok(()),
        "only scores"
    );
}

#[test]
fn required_pod_anti_affinity_keeps_matching_pods_apart_both_ways() {
    let anti = |name: &str| {
        pod(
            name,
            json!({"metadata": {"labels": {"app": "db"}}, "spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"app": "db"}},
                "topologyKey": "kubernetes.io/hostname"
            }]}}}}),
        )
    };
    let mut s = state(&[node("n", json!({}))]);
    assert_eq!(check(&anti("a"), &s), Ok(()));
    s.place(
        info(&pod("web", json!({"metadata": {"labels": {"app": "web"}}}))),
        "n",
    );
    assert_eq!(check(&anti("a"), &s), Ok(()), "other pods do not matter");
    s.place(info(&anti("a")), "n");
    assert_eq!(
        check(&anti("b"), &s),
        Err(vec![
            "node(s) didn't satisfy existing pods anti-affinity rules".to_string()
        ])
    );
    // A plain pod with the label the placed pod repels is kept away too.
    let labelled = pod("c", json!({"metadata": {"labels": {"app": "db"}}}));
    assert!(check(&labelled, &s).is_err());
    // A pod repelling a plain pod that is there.
    let mut s = state(&[node("n", json!({}))]);
    s.place(info(&labelled), "n");
    assert_eq!(
        check(&anti("d"), &s),
        Err(vec![
            "node(s) didn't match pod anti-affinity rules".to_string()
        ])
    );
    // Pods in other namespaces are not selected by default.
    let mut s = state(&[node("n", json!({}))]);
    s.place(
        info(&pod(
            "e",
            json!({"metadata": {"namespace": "other", "labels": {"app": "db"}}}),
        )),
        "n",
    );
    assert_eq!(check(&anti("f"), &s), Ok(()));
}
