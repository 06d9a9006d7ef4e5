//! Validation of RBAC roles and bindings: every rule names verbs and what
//! they apply to, and a binding's role reference is fixed once created.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::field::{Path, invalid_each, required_because};
use super::meta::NameRule;
use super::selector::validate_label_selector;
use crate::error::FieldError;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn validate_rules(rules: Option<&[PolicyRule]>, namespaced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, rule) in rules.unwrap_or_default().iter().enumerate() {
        let p = Path::new("rules").index(i);
        if rule.verbs.is_empty() {
            errors.push(required_because(
                p.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let non_resource = rule.non_resource_urls.as_deref().unwrap_or_default();
        let nonempty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
        if !non_resource.is_empty() {
            if namespaced {
                errors.push(FieldError::invalid(
                    p.child("nonResourceURLs"),
                    non_resource.join(","),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if nonempty(&rule.api_groups)
                || nonempty(&rule.resources)
                || nonempty(&rule.resource_names)
            {
                errors.push(FieldError::invalid(
                    p.child("nonResourceURLs"),
                    non_resource.join(","),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if !nonempty(&rule.api_groups) {
            errors.push(required_because(
                p.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if !nonempty(&rule.resources) {
            errors.push(required_because(
                p.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errors
}

fn validate_role_ref(role_ref: &RoleRef, kinds: &[&str]) -> Vec<FieldError> {
    let path = Path::new("roleRef");
    let mut errors = Vec::new();
    if role_ref.api_group != RBAC_GROUP {
        errors.push(FieldError::not_supported(
            path.child("apiGroup"),
            &role_ref.api_group,
            &[RBAC_GROUP],
        ));
    }
    if !kinds.contains(&role_ref.kind.as_str()) {
        errors.push(FieldError::not_supported(
            path.child("kind"),
            &role_ref.kind,
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errors.push(FieldError::required(path.child("name")));
    } else {
        errors.extend(invalid_each(
            &path.child("name"),
            &role_ref.name,
            NameRule::PathSegment.check(&role_ref.name),
        ));
    }
    errors
}

/// ServiceAccount subjects of a ClusterRoleBinding must say which
/// namespace; in a RoleBinding they default to the binding's namespace.
fn validate_subjects(subjects: Option<&[Subject]>, namespaced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, s) in subjects.unwrap_or_default().iter().enumerate() {
        let p = Path::new("subjects").index(i);
        if s.name.is_empty() {
            errors.push(FieldError::required(p.child("name")));
        }
        let group = s.api_group.as_deref().unwrap_or_default();
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.name.is_empty() {
                    errors.extend(invalid_each(
                        &p.child("name"),
                        &s.name,
                        NameRule::Subdomain.check(&s.name),
                    ));
                }
                if !group.is_empty() {
                    errors.push(FieldError::not_supported(p.child("apiGroup"), group, &[""]));
                }
                if !namespaced && s.namespace.as_deref().unwrap_or_default().is_empty() {
                    errors.push(FieldError::required(p.child("namespace")));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    errors.push(FieldError::not_supported(
                        p.child("apiGroup"),
                        group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errors.push(FieldError::not_supported(
                p.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errors
}

fn role_ref_unchanged(new: &RoleRef, old: Option<&RoleRef>) -> Vec<FieldError> {
    match old {
        Some(old) if old != new => vec![FieldError::invalid(
            "roleRef",
            &new.name,
            "cannot change roleRef",
        )],
        _ => Vec::new(),
    }
}

pub fn role(obj: &Role, _old: Option<&Role>) -> Vec<FieldError> {
    validate_rules(obj.rules.as_deref(), true)
}

pub fn cluster_role(obj: &ClusterRole, _old: Option<&ClusterRole>) -> Vec<FieldError> {
    let mut errors = validate_rules(obj.rules.as_deref(), false);
    if let Some(rule) = &obj.aggregation_rule {
        let path = Path::new("aggregationRule").child("clusterRoleSelectors");
        let selectors = rule.cluster_role_selectors.as_deref().unwrap_or_default();
        if selectors.is_empty() {
            errors.push(required_because(
                &path,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            errors.extend(validate_label_selector(sel, &path.index(i)));
        }
    }
    errors
}

pub fn role_binding(obj: &RoleBinding, old: Option<&RoleBinding>) -> Vec<FieldError> {
    let mut errors = validate_role_ref(&obj.role_ref, &["Role", "ClusterRole"]);
    errors.extend(validate_subjects(obj.subjects.as_deref(), true));
    errors.extend(role_ref_unchanged(&obj.role_ref, old.map(|o| &o.role_ref)));
    errors
}

pub fn cluster_role_binding(
    obj: &ClusterRoleBinding,
    old: Option<&ClusterRoleBinding>,
) -> Vec<FieldError> {
    let mut errors = validate_role_ref(&obj.role_ref, &["ClusterRole"]);
    errors.extend(validate_subjects(obj.subjects.as_deref(), false));
    errors.extend(role_ref_unchanged(&obj.role_ref, old.map(|o| &o.role_ref)));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::testing::fields;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect());
        PolicyRule {
            verbs: verbs.iter().map(|x| x.to_string()).collect(),
            api_groups: v(groups),
            resources: v(resources),
            ..Default::default()
        }
    }

    fn role_ref(kind: &str) -> RoleRef {
        RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: kind.into(),
            name: "reader".into(),
        }
    }

    #[test]
    fn rules_need_verbs_groups_and_resources() {
        let r = Role {
            rules: Some(vec![rule(&["get"], &[""], &["pods"]), rule(&[], &[], &[])]),
            ..Default::default()
        };
        assert_eq!(
            fields(&role(&r, None)),
            ["rules[1].verbs", "rules[1].apiGroups", "rules[1].resources"]
        );
    }

    #[test]
    fn only_cluster_roles_may_cover_non_resource_urls() {
        let urls = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: Some(vec!["/healthz".into()]),
            ..Default::default()
        };
        assert_eq!(
            fields(&role(
                &Role {
                    rules: Some(vec![urls.clone()]),
                    ..Default::default()
                },
                None
            )),
            ["rules[0].nonResourceURLs"]
        );
        assert_eq!(
            cluster_role(
                &ClusterRole {
                    rules: Some(vec![urls]),
                    ..Default::default()
                },
                None
            ),
            Vec::new()
        );
    }

    #[test]
    fn role_ref_kind_and_group_are_checked() {
        let b = RoleBinding {
            role_ref: RoleRef {
                api_group: "x".into(),
                kind: "Thing".into(),
                name: "a/b".into(),
            },
            ..Default::default()
        };
        assert_eq!(
            fields(&role_binding(&b, None)),
            ["roleRef.apiGroup", "roleRef.kind", "roleRef.name"]
        );
        let b = ClusterRoleBinding {
            role_ref: role_ref("Role"),
            ..Default::default()
        };
        assert_eq!(fields(&cluster_role_binding(&b, None)), ["roleRef.kind"]);
    }

    #[test]
    fn role_ref_is_immutable() {
        let old = RoleBinding {
            role_ref: role_ref("Role"),
            ..Default::default()
        };
        let new = RoleBinding {
            role_ref: role_ref("ClusterRole"),
            ..Default::default()
        };
        assert_eq!(fields(&role_binding(&new, Some(&old))), ["roleRef"]);
    }

    #[test]
    fn subjects_are_checked_per_kind() {
        let subject = |kind: &str, group: Option<&str>, ns: Option<&str>| Subject {
            kind: kind.into(),
            name: "x".into(),
            api_group: group.map(Into::into),
            namespace: ns.map(Into::into),
        };
        let b = ClusterRoleBinding {
            role_ref: role_ref("ClusterRole"),
            subjects: Some(vec![
                subject("ServiceAccount", None, None),
                subject("User", Some(RBAC_GROUP), None),
                subject("Group", None, None),
                subject("Robot", None, None),
            ]),
            ..Default::default()
        };
        assert_eq!(
            fields(&cluster_role_binding(&b, None)),
            [
                "subjects[0].namespace",
                "subjects[2].apiGroup",
                "subjects[3].kind"
            ]
        );
        let b = RoleBinding {
            role_ref: role_ref("Role"),
            subjects: Some(vec![subject("ServiceAccount", None, None)]),
            ..Default::default()
        };
        assert_eq!(role_binding(&b, None), Vec::new());
    }
}
