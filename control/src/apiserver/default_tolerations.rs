//! Kubernetes' DefaultTolerationSeconds admission: a pod created without
//! its own tolerations of the `node.kubernetes.io/not-ready` and
//! `node.kubernetes.io/unreachable` NoExecute taints gets them, bounded by
//! the server's `--default-toleration-seconds`, so the node lifecycle
//! controller evicts it that long after its node fails.

use serde_json::{Value, json};

/// Kubernetes' default; `wasmpod server` sets its own (5 s at the edge).
pub const KUBERNETES_DEFAULT_SECONDS: i64 = 300;

const TAINTS: [&str; 2] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];

/// Adds the default tolerations `pod` (a Pod as JSON) lacks.
pub fn add(pod: &mut Value, seconds: i64) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if tolerations.is_null() {
        *tolerations = json!([]);
    }
    let Some(list) = tolerations.as_array_mut() else {
        // Not a list: validation reports it.
        return;
    };
    for taint in TAINTS {
        if !list.iter().any(|t| covers(t, taint)) {
            list.push(json!({
                "key": taint,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": seconds,
            }));
        }
    }
}

/// Whether `toleration` is one for `taint`'s NoExecute effect (a key or
/// effect left empty covers all), as the Kubernetes plugin checks.
fn covers(toleration: &Value, taint: &str) -> bool {
    let field = |name: &str| toleration.get(name).and_then(Value::as_str).unwrap_or("");
    let key = field("key");
    let effect = field("effect");
    (key.is_empty() || key == taint) && (effect.is_empty() || effect == "NoExecute")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_without_them_get_both_default_tolerations() {
        let mut pod = json!({"spec": {"containers": []}});
        add(&mut pod, 5);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 5},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 5},
            ])
        );
    }

    #[test]
    fn a_pods_own_tolerations_of_those_taints_are_kept() {
        let own = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 60});
        let mut pod = json!({"spec": {"tolerations": [own.clone()]}});
        add(&mut pod, 5);
        let list = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], own);
        assert_eq!(list[1]["key"], "node.kubernetes.io/not-ready");

        let mut everything = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add(&mut everything, 5);
        assert_eq!(
            everything["spec"]["tolerations"],
            json!([{"operator": "Exists"}])
        );
    }
}
