//! Pod validation: the pod spec rules shared by Pods and every workload's
//! pod template, the rules only a Pod has, and (in `update`) what a Pod
//! update may change.

mod container;
mod env;
mod resources;
mod update;
pub mod volume;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Pod, PodSpec, Toleration};

pub use container::{PROTOCOLS, validate_port_num_or_name};
pub use resources::is_overcommit_allowed;
pub use update::validate_pod_update;

use self::container::{ContainerKind, PodFacts, accumulate_host_ports, validate_container};
use super::field::{
    Path, inclusive_range, invalid_each, nonnegative, one_of, optional_one_of, required_because,
};
use super::names;
use super::selector::{validate_label_key, validate_labels};
use crate::error::FieldError;

pub const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PREEMPTION_POLICIES: &[&str] = &["Never", "PreemptLowerPriority"];
const TAINT_EFFECTS: &[&str] = &["NoExecute", "NoSchedule", "PreferNoSchedule"];

/// The built-in PriorityClasses; wasmpod serves no PriorityClass kind, so
/// these are the only names a pod may use.
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i32)] = &[
    ("system-cluster-critical", 2_000_000_000),
    ("system-node-critical", 2_000_001_000),
];

/// The priority a pod gets from its `priorityClassName` (0 without one),
/// or `None` for an unknown class.
pub fn priority_for_class(class: Option<&str>) -> Option<i32> {
    match class {
        None | Some("") => Some(0),
        Some(name) => SYSTEM_PRIORITY_CLASSES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v),
    }
}

/// Whether the spec being checked is a Pod's or a pod template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecOf {
    Pod,
    Template,
}

/// `ValidatePodSpec`: the rules every pod spec meets, at `path`.
pub fn validate_pod_spec(spec: &PodSpec, path: &Path, of: SpecOf) -> Vec<FieldError> {
    validate_pod_spec_with_volumes(spec, path, of, &[])
}

/// `validate_pod_spec` for a template whose controller adds volumes of its
/// own (a StatefulSet's claim templates), which containers may mount.
pub fn validate_pod_spec_with_volumes(
    spec: &PodSpec,
    path: &Path,
    of: SpecOf,
    extra_volumes: &[String],
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut volumes = volume::validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        &path.child("volumes"),
        &mut errors,
    );
    volumes.extend(extra_volumes.iter().cloned());
    let facts = PodFacts {
        volumes: &volumes,
        require_image: of == SpecOf::Pod,
    };

    if spec.containers.is_empty() {
        errors.push(FieldError::required(path.child("containers")));
    }
    let mut container_names = BTreeSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let p = path.child("containers").index(i);
        errors.extend(validate_container(c, ContainerKind::Regular, &facts, &p));
        if !c.name.is_empty() && !container_names.insert(c.name.as_str()) {
            errors.push(FieldError::duplicate(p.child("name"), &c.name));
        }
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let p = path.child("initContainers").index(i);
        errors.extend(validate_container(c, ContainerKind::Init, &facts, &p));
        if !c.name.is_empty() && !container_names.insert(c.name.as_str()) {
            errors.push(FieldError::duplicate(p.child("name"), &c.name));
        }
    }
    accumulate_host_ports(
        &spec.containers,
        &path.child("containers"),
        &mut BTreeSet::new(),
        &mut errors,
    );

    one_of(
        &mut errors,
        &path.child("restartPolicy"),
        spec.restart_policy.as_deref(),
        RESTART_POLICIES,
    );
    one_of(
        &mut errors,
        &path.child("dnsPolicy"),
        spec.dns_policy.as_deref(),
        DNS_POLICIES,
    );
    if spec.dns_policy.as_deref() == Some("None") {
        match &spec.dns_config {
            None => errors.push(required_because(
                path.child("dnsConfig"),
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )),
            Some(c) if c.nameservers.as_deref().unwrap_or_default().is_empty() => {
                errors.push(required_because(
                    path.child("dnsConfig").child("nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(config) = &spec.dns_config {
        for (i, ns) in config.nameservers.iter().flatten().enumerate() {
            errors.extend(invalid_each(
                &path.child("dnsConfig").child("nameservers").index(i),
                ns,
                names::is_valid_ip(ns),
            ));
        }
    }
    errors.extend(validate_labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
    ));
    for (field, value) in [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
        ("priorityClassName", &spec.priority_class_name),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errors.extend(invalid_each(
                &path.child(field),
                v,
                names::is_dns1123_subdomain(v),
            ));
        }
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errors.extend(invalid_each(
                &path.child(field),
                v,
                names::is_dns1123_label(v),
            ));
        }
    }
    if let Some(v) = spec
        .active_deadline_seconds
        .filter(|v| !(1..=i64::from(i32::MAX)).contains(v))
    {
        errors.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            v,
            inclusive_range(1, i64::from(i32::MAX)),
        ));
    }
    nonnegative(
        &mut errors,
        &path.child("terminationGracePeriodSeconds"),
        spec.termination_grace_period_seconds,
    );
    optional_one_of(
        &mut errors,
        &path.child("preemptionPolicy"),
        spec.preemption_policy.as_deref(),
        PREEMPTION_POLICIES,
    );
    errors.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &path.child("tolerations"),
    ));
    errors
}

/// `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Toleration], path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = t.key.as_deref().unwrap_or_default();
        let operator = t.operator.as_deref().unwrap_or_default();
        let value = t.value.as_deref().unwrap_or_default();
        let effect = t.effect.as_deref().unwrap_or_default();
        if !key.is_empty() {
            errors.extend(validate_label_key(key, &p.child("key")));
        }
        if key.is_empty() && operator != "Exists" {
            errors.push(FieldError::invalid(
                p.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errors.push(FieldError::invalid(
                p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "" | "Equal" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errors.push(FieldError::invalid(
                        p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errors.push(FieldError::invalid(
                        p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errors.push(FieldError::not_supported(
                p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errors.push(FieldError::not_supported(
                p.child("effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
    }
    errors
}

/// Validates a Pod (spec and the rules only Pods have) and, with `old`, the update.
pub fn pod(obj: &Pod, old: Option<&Pod>) -> Vec<FieldError> {
    let default_spec = PodSpec::default();
    let spec = obj.spec.as_ref().unwrap_or(&default_spec);
    let path = Path::new("spec");
    let mut errors = validate_pod_spec(spec, &path, SpecOf::Pod);
    if old.is_none() {
        if spec
            .ephemeral_containers
            .as_deref()
            .is_some_and(|e| !e.is_empty())
        {
            errors.push(FieldError::forbidden(
                path.child("ephemeralContainers"),
                "cannot be set on create",
            ));
        }
        let class = spec.priority_class_name.as_deref();
        match priority_for_class(class) {
            None => {
                let known: Vec<&str> = SYSTEM_PRIORITY_CLASSES.iter().map(|(n, _)| *n).collect();
                errors.push(FieldError::not_supported(
                    path.child("priorityClassName"),
                    class.unwrap_or_default(),
                    &known,
                ));
            }
            Some(computed) => {
                if let Some(given) = spec.priority.filter(|p| *p != computed) {
                    errors.push(FieldError::forbidden(
                        path.child("priority"),
                        format!(
                            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {computed} from the given PriorityClass name"
                        ),
                    ));
                }
            }
        }
    }
    if let Some(old) = old {
        errors.extend(validate_pod_update(obj, old));
    }
    errors
}

/// Template metadata rules (`ValidatePodTemplateSpec`): label and
/// annotation syntax, reported at `<template>.labels` as Kubernetes does.
pub fn validate_template_metadata(
    meta: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    path: &Path,
) -> Vec<FieldError> {
    let Some(meta) = meta else { return Vec::new() };
    let mut errors = validate_labels(meta.labels.as_ref(), &path.child("labels"));
    errors.extend(super::meta::validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, ContainerPort};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    pub(crate) fn valid_pod() -> Pod {
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("app:v1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        };
        crate::defaults::pod(&mut pod);
        pod
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn spec_mut(pod: &mut Pod) -> &mut PodSpec {
        pod.spec.get_or_insert_with(Default::default)
    }

    #[test]
    fn defaulted_pod_is_valid() {
        assert_eq!(pod(&valid_pod(), None), Vec::new());
    }

    #[test]
    fn pod_needs_a_container() {
        let mut p = valid_pod();
        spec_mut(&mut p).containers.clear();
        assert_eq!(fields(&pod(&p, None)), ["spec.containers"]);
    }

    #[test]
    fn container_names_are_unique_across_init_containers() {
        let mut p = valid_pod();
        let c = spec_mut(&mut p).containers[0].clone();
        spec_mut(&mut p).init_containers = Some(vec![c.clone()]);
        spec_mut(&mut p).containers.push(c);
        assert_eq!(
            fields(&pod(&p, None)),
            ["spec.containers[1].name", "spec.initContainers[0].name"]
        );
    }

    #[test]
    fn restart_policy_must_be_known() {
        let mut p = valid_pod();
        spec_mut(&mut p).restart_policy = Some("Sometimes".into());
        let errs = pod(&p, None);
        assert_eq!(fields(&errs), ["spec.restartPolicy"]);
        assert_eq!(errs[0].reason, "FieldValueNotSupported");
    }

    #[test]
    fn deadlines_must_be_in_range() {
        let mut p = valid_pod();
        spec_mut(&mut p).active_deadline_seconds = Some(0);
        spec_mut(&mut p).termination_grace_period_seconds = Some(-1);
        assert_eq!(
            fields(&pod(&p, None)),
            [
                "spec.activeDeadlineSeconds",
                "spec.terminationGracePeriodSeconds"
            ]
        );
    }

    #[test]
    fn host_ports_may_not_clash_between_containers() {
        let mut p = valid_pod();
        let port = ContainerPort {
            container_port: 80,
            host_port: Some(8080),
            protocol: Some("TCP".into()),
            ..Default::default()
        };
        let mut second = spec_mut(&mut p).containers[0].clone();
        second.name = "second".into();
        spec_mut(&mut p).containers.push(second);
        for c in &mut spec_mut(&mut p).containers {
            c.ports = Some(vec![port.clone()]);
        }
        assert_eq!(
            fields(&pod(&p, None)),
            ["spec.containers[1].ports[0].hostPort"]
        );
    }

    #[test]
    fn tolerations_follow_operator_rules() {
        let t = |key: &str, op: &str, value: &str| Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: Some(value.into()),
            ..Default::default()
        };
        let errs = validate_tolerations(
            &[
                t("", "Equal", ""),
                t("k", "Exists", "v"),
                t("k", "Maybe", ""),
            ],
            &Path::new("t"),
        );
        assert_eq!(
            fields(&errs),
            ["t[0].operator", "t[1].operator", "t[2].operator"]
        );
    }

    #[test]
    fn unknown_priority_class_and_explicit_priority_are_rejected() {
        let mut p = valid_pod();
        spec_mut(&mut p).priority_class_name = Some("gold".into());
        assert_eq!(fields(&pod(&p, None)), ["spec.priorityClassName"]);
        let mut p = valid_pod();
        spec_mut(&mut p).priority = Some(5);
        assert_eq!(fields(&pod(&p, None)), ["spec.priority"]);
    }
}
