//! Validation of StatefulSets (stable identities and per-ordinal claims,
//! so most of their spec is fixed at creation) and of the
//! ControllerRevisions that record their template history.

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};

use super::controller::{
    validate_int_or_percent, validate_long_running_template, validate_selector_for_template,
};
use super::diff::describe_changes;
use super::field::{Path, invalid_each, nonnegative, one_of, optional_one_of, required_because};
use super::names;
use super::storage::validate_pvc_spec;
use crate::error::FieldError;

const STATEFUL_SET_UPDATE_FORBIDDEN: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

pub fn stateful_set(obj: &StatefulSet, old: Option<&StatefulSet>) -> Vec<FieldError> {
    let Some(spec) = obj.spec.as_ref() else {
        return vec![FieldError::required("spec")];
    };
    let path = Path::new("spec");
    let mut errors = Vec::new();

    one_of(
        &mut errors,
        &path.child("podManagementPolicy"),
        spec.pod_management_policy.as_deref(),
        &["OrderedReady", "Parallel"],
    );
    let strategy_path = path.child("updateStrategy");
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    one_of(
        &mut errors,
        &strategy_path.child("type"),
        strategy.type_.as_deref(),
        &["OnDelete", "RollingUpdate"],
    );
    match (strategy.type_.as_deref(), &strategy.rolling_update) {
        (Some("OnDelete"), Some(_)) => errors.push(FieldError::invalid(
            strategy_path.child("rollingUpdate"),
            "",
            "only allowed for updateStrategy 'RollingUpdate'",
        )),
        (Some("RollingUpdate"), Some(r)) => {
            let rp = strategy_path.child("rollingUpdate");
            nonnegative(
                &mut errors,
                &rp.child("partition"),
                r.partition.map(i64::from),
            );
            validate_int_or_percent(
                r.max_unavailable.as_ref(),
                &rp.child("maxUnavailable"),
                &mut errors,
            );
        }
        _ => {}
    }
    nonnegative(
        &mut errors,
        &path.child("replicas"),
        spec.replicas.map(i64::from),
    );
    nonnegative(
        &mut errors,
        &path.child("minReadySeconds"),
        spec.min_ready_seconds.map(i64::from),
    );
    nonnegative(
        &mut errors,
        &path.child("revisionHistoryLimit"),
        spec.revision_history_limit.map(i64::from),
    );
    if let Some(ordinals) = &spec.ordinals {
        nonnegative(
            &mut errors,
            &path.child("ordinals").child("start"),
            ordinals.start.map(i64::from),
        );
    }
    if let Some(retention) = &spec.persistent_volume_claim_retention_policy {
        let rp = path.child("persistentVolumeClaimRetentionPolicy");
        for (field, value) in [
            ("whenDeleted", &retention.when_deleted),
            ("whenScaled", &retention.when_scaled),
        ] {
            optional_one_of(
                &mut errors,
                &rp.child(field),
                value.as_deref(),
                &["Delete", "Retain"],
            );
        }
    }
    // Pods of a StatefulSet use the governing service name as their DNS subdomain.
    if let Some(service) = spec.service_name.as_deref().filter(|s| !s.is_empty()) {
        errors.extend(invalid_each(
            &path.child("serviceName"),
            service,
            names::is_dns1123_label(service),
        ));
    }

    let mut claim_names = Vec::new();
    for (i, claim) in spec.volume_claim_templates.iter().flatten().enumerate() {
        let cp = path.child("volumeClaimTemplates").index(i);
        match claim.metadata.name.as_deref().filter(|n| !n.is_empty()) {
            None => errors.push(FieldError::required(cp.child("metadata").child("name"))),
            Some(name) => {
                errors.extend(invalid_each(
                    &cp.child("metadata").child("name"),
                    name,
                    names::is_dns1123_label(name),
                ));
                claim_names.push(name.to_string());
            }
        }
        match &claim.spec {
            None => errors.push(FieldError::required(cp.child("spec"))),
            Some(claim_spec) => errors.extend(validate_pvc_spec(claim_spec, &cp.child("spec"))),
        }
    }

    errors.extend(validate_selector_for_template(
        &spec.selector,
        Some(&spec.template),
        &path,
        "StatefulSet",
    ));
    errors.extend(validate_long_running_template(
        Some(&spec.template),
        &path.child("template"),
        "StatefulSet",
        &claim_names,
    ));

    if let Some(old_spec) = old.and_then(|o| o.spec.as_ref()) {
        let mut munged = spec.clone();
        munged.replicas = old_spec.replicas;
        munged.template = old_spec.template.clone();
        munged.update_strategy.clone_from(&old_spec.update_strategy);
        munged
            .persistent_volume_claim_retention_policy
            .clone_from(&old_spec.persistent_volume_claim_retention_policy);
        munged.min_ready_seconds = old_spec.min_ready_seconds;
        munged.ordinals.clone_from(&old_spec.ordinals);
        if munged != *old_spec {
            let changes = describe_changes(old_spec, &munged, &path);
            errors.push(FieldError::forbidden(
                &path,
                format!("{STATEFUL_SET_UPDATE_FORBIDDEN}\n{changes}"),
            ));
        }
    }
    errors
}

pub fn controller_revision(
    obj: &ControllerRevision,
    old: Option<&ControllerRevision>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if obj.data.is_none() {
        errors.push(required_because("data", "data is mandatory"));
    }
    nonnegative(&mut errors, &Path::new("revision"), Some(obj.revision));
    if let Some(old) = old
        && obj.data != old.data
    {
        errors.push(FieldError::immutable("data"));
    }
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeMount, VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

    use super::*;
    use crate::validation::testing::{fields, labels, template};

    fn claim(name: &str) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some([("storage".to_string(), Quantity("1Gi".into()))].into()),
                    limits: None,
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn sts() -> StatefulSet {
        let mut t = template("db");
        if let Some(spec) = t.spec.as_mut() {
            spec.containers[0].volume_mounts = Some(vec![VolumeMount {
                name: "data".into(),
                mount_path: "/data".into(),
                ..Default::default()
            }]);
        }
        let mut s = StatefulSet {
            metadata: ObjectMeta {
                name: Some("db".into()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                selector: LabelSelector {
                    match_labels: labels(&[("app", "db")]),
                    match_expressions: None,
                },
                service_name: Some("db".into()),
                template: t,
                volume_claim_templates: Some(vec![claim("data")]),
                ..Default::default()
            }),
            status: None,
        };
        crate::defaults::stateful_set(&mut s);
        s
    }

    fn spec(s: &mut StatefulSet) -> &mut StatefulSetSpec {
        s.spec.get_or_insert_with(Default::default)
    }

    #[test]
    fn stateful_set_may_mount_its_claim_templates() {
        assert_eq!(stateful_set(&sts(), None), Vec::new());
    }

    #[test]
    fn stateful_set_policies_must_be_known() {
        let mut s = sts();
        spec(&mut s).pod_management_policy = Some("Random".into());
        assert_eq!(
            fields(&stateful_set(&s, None)),
            ["spec.podManagementPolicy"]
        );
    }

    #[test]
    fn stateful_set_update_may_change_only_replicas_template_and_strategy() {
        let old = sts();
        let mut new = old.clone();
        spec(&mut new).replicas = Some(5);
        spec(&mut new)
            .template
            .spec
            .get_or_insert_with(Default::default)
            .containers[0]
            .image = Some("db:v2".into());
        assert_eq!(stateful_set(&new, Some(&old)), Vec::new());
        spec(&mut new).service_name = Some("other".into());
        let errs = stateful_set(&new, Some(&old));
        assert_eq!(fields(&errs), ["spec"]);
        assert!(
            errs[0].message.contains("spec.serviceName"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn stateful_set_claim_templates_are_validated() {
        let mut s = sts();
        let mut bad = claim("data");
        bad.spec.get_or_insert_with(Default::default).access_modes = None;
        spec(&mut s).volume_claim_templates = Some(vec![bad]);
        assert_eq!(
            fields(&stateful_set(&s, None)),
            ["spec.volumeClaimTemplates[0].spec.accessModes"]
        );
    }

    #[test]
    fn controller_revision_data_is_mandatory_and_immutable() {
        let rev = ControllerRevision {
            revision: -1,
            ..Default::default()
        };
        assert_eq!(
            fields(&controller_revision(&rev, None)),
            ["data", "revision"]
        );
        let old = ControllerRevision {
            revision: 1,
            data: Some(RawExtension(serde_json::json!({"a": 1}))),
            ..Default::default()
        };
        let new = ControllerRevision {
            data: Some(RawExtension(serde_json::json!({"a": 2}))),
            ..old.clone()
        };
        assert_eq!(fields(&controller_revision(&new, Some(&old))), ["data"]);
    }
}
