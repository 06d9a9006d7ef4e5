//! Conversions of the rbac.authorization.k8s.io/v1 kinds: Role,
//! ClusterRole, RoleBinding and ClusterRoleBinding.

use k8s_pb::api::rbac::v1 as rbac;

use super::convert::{Conv, Obj};
use super::meta::{label_selector, object_meta};

pub(super) fn role(r: rbac::Role) -> Conv {
    let rbac::Role { metadata, rules } = r;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .list("rules", rules, policy_rule)?
        .done())
}

pub(super) fn cluster_role(r: rbac::ClusterRole) -> Conv {
    let rbac::ClusterRole {
        metadata,
        rules,
        aggregation_rule,
    } = r;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .list("rules", rules, policy_rule)?
        .ptr("aggregationRule", aggregation_rule, |a| {
            let rbac::AggregationRule {
                cluster_role_selectors,
            } = a;
            Ok(Obj::new()
                .list(
                    "clusterRoleSelectors",
                    cluster_role_selectors,
                    label_selector,
                )?
                .done())
        })?
        .done())
}

fn policy_rule(r: rbac::PolicyRule) -> Conv {
    let rbac::PolicyRule {
        verbs,
        api_groups,
        resources,
        resource_names,
        non_resource_ur_ls,
    } = r;
    Ok(Obj::new()
        .strs("verbs", verbs)
        .strs("apiGroups", api_groups)
        .strs("resources", resources)
        .strs("resourceNames", resource_names)
        .strs("nonResourceURLs", non_resource_ur_ls)
        .done())
}

pub(super) fn role_binding(b: rbac::RoleBinding) -> Conv {
    let rbac::RoleBinding {
        metadata,
        subjects,
        role_ref,
    } = b;
    binding(metadata, subjects, role_ref)
}

pub(super) fn cluster_role_binding(b: rbac::ClusterRoleBinding) -> Conv {
    let rbac::ClusterRoleBinding {
        metadata,
        subjects,
        role_ref,
    } = b;
    binding(metadata, subjects, role_ref)
}

fn binding(
    metadata: Option<k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    subjects: Vec<rbac::Subject>,
    role_ref: Option<rbac::RoleRef>,
) -> Conv {
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .list("subjects", subjects, |s| {
            let rbac::Subject {
                kind,
                api_group,
                name,
                namespace,
            } = s;
            Ok(Obj::new()
                .str("kind", kind)
                .str("apiGroup", api_group)
                .str("name", name)
                .str("namespace", namespace)
                .done())
        })?
        .msg("roleRef", role_ref, |r| {
            let rbac::RoleRef {
                api_group,
                kind,
                name,
            } = r;
            Ok(Obj::new()
                .str("apiGroup", api_group)
                .str("kind", kind)
                .str("name", name)
                .done())
        })?
        .done())
}

#[cfg(test)]
mod tests {
    use k8s_pb::api::rbac::v1 as rbac;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use serde_json::json;

    use crate::apiserver::protobuf::tests::{decoded, go_meta, labels, s};

    #[test]
    fn kubectl_create_role_and_rolebinding() {
        let role = rbac::Role {
            metadata: Some(go_meta("r")),
            rules: vec![rbac::PolicyRule {
                verbs: vec!["get".into()],
                api_groups: vec![String::new()],
                resources: vec!["pods".into()],
                resource_names: vec!["one".into()],
                non_resource_ur_ls: vec![],
            }],
        };
        assert_eq!(
            decoded("rbac.authorization.k8s.io/v1", "Role", &role),
            Ok(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
                "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["one"]}]
            }))
        );
        let binding = rbac::RoleBinding {
            metadata: Some(go_meta("rb")),
            subjects: vec![
                rbac::Subject {
                    kind: s("User"),
                    api_group: s("rbac.authorization.k8s.io"),
                    name: s("u"),
                    namespace: s(""),
                },
                rbac::Subject {
                    kind: s("ServiceAccount"),
                    api_group: s(""),
                    name: s("sa"),
                    namespace: s("default"),
                },
            ],
            role_ref: Some(rbac::RoleRef {
                api_group: s("rbac.authorization.k8s.io"),
                kind: s("Role"),
                name: s("r"),
            }),
        };
        assert_eq!(
            decoded("rbac.authorization.k8s.io/v1", "RoleBinding", &binding),
            Ok(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
                "subjects": [
                    {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "u"},
                    {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}
                ],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}
            }))
        );
    }

    #[test]
    fn kubectl_create_clusterrole_with_aggregation_and_clusterrolebinding() {
        let role = rbac::ClusterRole {
            metadata: Some(go_meta("agg")),
            rules: vec![rbac::PolicyRule {
                verbs: vec!["get".into()],
                non_resource_ur_ls: vec!["/healthz".into()],
                ..Default::default()
            }],
            aggregation_rule: Some(rbac::AggregationRule {
                cluster_role_selectors: vec![meta::LabelSelector {
                    match_labels: labels(&[("agg", "true")]),
                    match_expressions: vec![],
                }],
            }),
        };
        assert_eq!(
            decoded("rbac.authorization.k8s.io/v1", "ClusterRole", &role),
            Ok(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agg"},
                "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]}
            }))
        );
        let binding = rbac::ClusterRoleBinding {
            metadata: Some(go_meta("crb")),
            subjects: vec![rbac::Subject {
                kind: s("Group"),
                api_group: s("rbac.authorization.k8s.io"),
                name: s("g"),
                namespace: s(""),
            }],
            role_ref: Some(rbac::RoleRef {
                api_group: s("rbac.authorization.k8s.io"),
                kind: s("ClusterRole"),
                name: s("agg"),
            }),
        };
        assert_eq!(
            decoded(
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                &binding
            )
            .map(|v| v["roleRef"].clone()),
            Ok(
                json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "agg"})
            )
        );
    }
}
