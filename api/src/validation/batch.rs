//! Validation of Jobs: run-to-completion pods, the generated selector, and
//! what a Job may no longer change once it could have started pods.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Affinity, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::controller::{SELECTOR_MISMATCH, labels_display, template_labels};
use super::field::{Path, nonnegative, optional_one_of, required_because};
use super::names;
use super::pod::{SpecOf, validate_pod_spec, validate_template_metadata};
use super::selector::{self, validate_label_selector};
use crate::defaults::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};
use crate::error::FieldError;

/// Indexed Jobs track completed indexes in status; this caps their parallelism.
const MAX_PARALLELISM_FOR_INDEXED_JOB: i32 = 100_000;

pub fn job(obj: &Job, old: Option<&Job>) -> Vec<FieldError> {
    let Some(spec) = obj.spec.as_ref() else {
        return vec![FieldError::required("spec")];
    };
    let path = Path::new("spec");
    let mut errors = validate_job_spec(spec, &path);

    let labels = template_labels(&spec.template);
    match &spec.selector {
        None => errors.push(FieldError::required(path.child("selector"))),
        Some(sel) => {
            errors.extend(validate_label_selector(sel, &path.child("selector")));
            if !selector::matches(sel, labels) {
                let p = path.child("template").child("metadata").child("labels");
                errors.push(FieldError::invalid(
                    p,
                    labels_display(labels),
                    SELECTOR_MISMATCH,
                ));
            }
        }
    }
    if spec.manual_selector != Some(true) && spec.selector.is_some() {
        errors.extend(validate_generated_selector(obj, spec, old));
    }

    let name = obj.metadata.name.as_deref().unwrap_or_default();
    if spec.completion_mode.as_deref() == Some("Indexed")
        && let Some(completions) = spec.completions.filter(|c| *c > 0)
    {
        // Pods of an Indexed Job get `<name>-<index>` as hostname.
        let hostname = format!("{name}-{}", completions - 1);
        if !names::is_dns1123_label(&hostname).is_empty() {
            errors.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    if let Some(old_spec) = old.and_then(|o| o.spec.as_ref()) {
        let old_started = old
            .and_then(|o| o.status.as_ref())
            .and_then(|s| s.start_time.as_ref())
            .is_some();
        errors.extend(validate_job_update(
            spec,
            old_spec,
            old_spec.suspend == Some(true) && !old_started,
        ));
    }
    errors
}

/// A generated selector must select exactly this Job's pods: the template
/// carries the uid and name labels and the selector matches them.
fn validate_generated_selector(obj: &Job, spec: &JobSpec, old: Option<&Job>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let uid = obj.metadata.uid.as_deref().unwrap_or_default();
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    if uid.is_empty() {
        errors.push(FieldError::required("metadata.uid"));
    }
    let labels = template_labels(&spec.template);
    // Jobs created before the prefixed labels existed keep working without them.
    let old_labels = old
        .and_then(|o| o.spec.as_ref())
        .and_then(|s| template_labels(&s.template));
    let require_prefixed = match old {
        None => true,
        Some(_) => old_labels.is_some_and(|l| {
            l.contains_key(JOB_NAME_LABEL) && l.contains_key(CONTROLLER_UID_LABEL)
        }),
    };
    let mut expected = vec![
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
    ];
    if require_prefixed {
        expected.extend([(CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name)]);
    }
    let label_path = Path::new("spec")
        .child("template")
        .child("metadata")
        .child("labels");
    for (key, value) in &expected {
        match labels.and_then(|l| l.get(*key)) {
            None => errors.push(FieldError::required(label_path.key(key))),
            Some(v) if v != value => errors.push(FieldError::invalid(
                label_path.key(key),
                v,
                format!("must be '{value}'"),
            )),
            Some(_) => {}
        }
    }
    let expected_labels = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(sel) = &spec.selector
        && !selector::matches(sel, Some(&expected_labels))
    {
        errors.push(FieldError::invalid(
            "spec.selector",
            labels_display(sel.match_labels.as_ref()),
            "`selector` not auto-generated",
        ));
    }
    errors
}

/// Rules shared by a Job's spec and a CronJob's Job template.
pub(super) fn validate_job_spec(spec: &JobSpec, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, value) in [
        ("parallelism", spec.parallelism.map(i64::from)),
        ("completions", spec.completions.map(i64::from)),
        ("activeDeadlineSeconds", spec.active_deadline_seconds),
        ("backoffLimit", spec.backoff_limit.map(i64::from)),
        (
            "ttlSecondsAfterFinished",
            spec.ttl_seconds_after_finished.map(i64::from),
        ),
        (
            "backoffLimitPerIndex",
            spec.backoff_limit_per_index.map(i64::from),
        ),
        ("maxFailedIndexes", spec.max_failed_indexes.map(i64::from)),
    ] {
        nonnegative(&mut errors, &path.child(field), value);
    }
    if spec.max_failed_indexes.is_some() && spec.backoff_limit_per_index.is_none() {
        errors.push(required_because(
            path.child("backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    optional_one_of(
        &mut errors,
        &path.child("completionMode"),
        spec.completion_mode.as_deref(),
        &["NonIndexed", "Indexed"],
    );
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    if indexed {
        if spec.completions.is_none() {
            errors.push(required_because(
                path.child("completions"),
                "when completion mode is Indexed",
            ));
        }
        if let Some(p) = spec
            .parallelism
            .filter(|p| *p > MAX_PARALLELISM_FOR_INDEXED_JOB)
        {
            errors.push(FieldError::invalid(
                path.child("parallelism"),
                p,
                format!("must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"),
            ));
        }
        if let (Some(max), Some(completions)) = (spec.max_failed_indexes, spec.completions)
            && max > completions
        {
            errors.push(FieldError::invalid(
                path.child("maxFailedIndexes"),
                max,
                "must be less than or equal to completions",
            ));
        }
    } else {
        for (field, value) in [
            ("backoffLimitPerIndex", spec.backoff_limit_per_index),
            ("maxFailedIndexes", spec.max_failed_indexes),
        ] {
            if let Some(v) = value {
                errors.push(FieldError::invalid(
                    path.child(field),
                    v,
                    "requires indexed completion mode",
                ));
            }
        }
        if spec.success_policy.is_some() {
            errors.push(FieldError::invalid(
                path.child("successPolicy"),
                "",
                "requires indexed completion mode",
            ));
        }
    }
    optional_one_of(
        &mut errors,
        &path.child("podReplacementPolicy"),
        spec.pod_replacement_policy.as_deref(),
        &["Failed", "TerminatingOrFailed"],
    );
    if spec.pod_failure_policy.is_some()
        && let Some(policy) = spec
            .pod_replacement_policy
            .as_deref()
            .filter(|p| *p != "Failed")
    {
        errors.push(FieldError::not_supported(
            path.child("podReplacementPolicy"),
            policy,
            &["Failed"],
        ));
    }

    let template_path = path.child("template");
    errors.extend(validate_template_metadata(
        spec.template.metadata.as_ref(),
        &template_path,
    ));
    let default_spec = PodSpec::default();
    let pod_spec = spec.template.spec.as_ref().unwrap_or(&default_spec);
    let pod_path = template_path.child("spec");
    errors.extend(validate_pod_spec(pod_spec, &pod_path, SpecOf::Template));
    let restart = pod_spec.restart_policy.as_deref().unwrap_or_default();
    let restart_path = pod_path.child("restartPolicy");
    match restart {
        "" | "Always" => errors.push(required_because(
            &restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" if spec.pod_failure_policy.is_some() => errors.push(FieldError::invalid(
            &restart_path,
            restart,
            "only \"Never\" is supported when podFailurePolicy is specified",
        )),
        "OnFailure" | "Never" => {}
        other => errors.push(FieldError::not_supported(
            &restart_path,
            other,
            &["OnFailure", "Never"],
        )),
    }
    errors
}

/// What a Job update may change. The pod template is fixed once the Job
/// could have started pods; a suspended Job that never ran may still
/// change where its pods go (node selector, tolerations, node affinity,
/// scheduling gates) and the template's labels and annotations.
fn validate_job_update(spec: &JobSpec, old: &JobSpec, scheduling_mutable: bool) -> Vec<FieldError> {
    let path = Path::new("spec");
    let mut errors = Vec::new();
    if spec.completions != old.completions {
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        if !indexed {
            errors.push(FieldError::immutable(path.child("completions")));
        } else if spec.completions.is_some() && spec.completions != spec.parallelism {
            errors.push(FieldError::invalid(
                path.child("completions"),
                spec.completions.unwrap_or(0),
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    if spec.selector != old.selector {
        errors.push(FieldError::immutable(path.child("selector")));
    }
    let mut old_template = old.template.clone();
    if scheduling_mutable {
        allow_scheduling_changes(&spec.template, &mut old_template);
    }
    if spec.template != old_template {
        errors.push(FieldError::immutable(path.child("template")));
    }
    for (field, changed) in [
        (
            "completionMode",
            spec.completion_mode != old.completion_mode,
        ),
        (
            "podFailurePolicy",
            spec.pod_failure_policy != old.pod_failure_policy,
        ),
        (
            "backoffLimitPerIndex",
            spec.backoff_limit_per_index != old.backoff_limit_per_index,
        ),
        ("managedBy", spec.managed_by != old.managed_by),
        ("successPolicy", spec.success_policy != old.success_policy),
    ] {
        if changed {
            errors.push(FieldError::immutable(path.child(field)));
        }
    }
    errors
}

/// Copies the fields a suspended, never-started Job may change from the
/// new template into (a copy of) the old one.
fn allow_scheduling_changes(new: &PodTemplateSpec, old: &mut PodTemplateSpec) {
    if let (Some(new_spec), Some(old_spec)) = (new.spec.as_ref(), old.spec.as_mut()) {
        old_spec.node_selector.clone_from(&new_spec.node_selector);
        old_spec.tolerations.clone_from(&new_spec.tolerations);
        old_spec
            .scheduling_gates
            .clone_from(&new_spec.scheduling_gates);
        // Only node affinity may change; pod (anti-)affinity stays fixed.
        match (new_spec.affinity.as_ref(), old_spec.affinity.as_mut()) {
            (None, Some(a)) => {
                a.node_affinity = None;
                if *a == Affinity::default() {
                    old_spec.affinity = None;
                }
            }
            (Some(n), None) => {
                old_spec.affinity = Some(Affinity {
                    node_affinity: n.node_affinity.clone(),
                    ..Default::default()
                });
            }
            (Some(n), Some(a)) => a.node_affinity.clone_from(&n.node_affinity),
            (None, None) => {}
        }
    }
    match (new.metadata.as_ref(), old.metadata.as_mut()) {
        (Some(n), Some(o)) => {
            o.labels.clone_from(&n.labels);
            o.annotations.clone_from(&n.annotations);
        }
        (Some(n), None) => {
            old.metadata = Some(ObjectMeta {
                labels: n.labels.clone(),
                annotations: n.annotations.clone(),
                ..Default::default()
            });
        }
        (None, Some(o)) => {
            o.labels = None;
            o.annotations = None;
            if *o == ObjectMeta::default() {
                old.metadata = None;
            }
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::JobStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

    use super::*;
    use crate::validation::testing::{fields, labels, template};

    fn new_job() -> Job {
        let mut t = template("pi");
        if let Some(s) = t.spec.as_mut() {
            s.restart_policy = Some("Never".into());
        }
        let mut j = Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("default".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                template: t,
                ..Default::default()
            }),
            status: None,
        };
        crate::defaults::job(&mut j);
        j
    }

    fn spec(j: &mut Job) -> &mut JobSpec {
        j.spec.get_or_insert_with(Default::default)
    }

    #[test]
    fn defaulted_job_is_valid() {
        assert_eq!(job(&new_job(), None), Vec::new());
    }

    #[test]
    fn job_restart_policy_must_be_on_failure_or_never() {
        let mut j = new_job();
        spec(&mut j)
            .template
            .spec
            .get_or_insert_with(Default::default)
            .restart_policy = Some("Always".into());
        let errs = job(&j, None);
        assert_eq!(fields(&errs), ["spec.template.spec.restartPolicy"]);
        assert_eq!(
            errs[0].message,
            "Required value: valid values: \"OnFailure\", \"Never\""
        );
    }

    #[test]
    fn job_counts_are_nonnegative_and_indexed_needs_completions() {
        let mut j = new_job();
        spec(&mut j).parallelism = Some(-1);
        spec(&mut j).backoff_limit = Some(-1);
        spec(&mut j).completion_mode = Some("Indexed".into());
        spec(&mut j).completions = None;
        assert_eq!(
            fields(&job(&j, None)),
            ["spec.parallelism", "spec.backoffLimit", "spec.completions"]
        );
        spec(&mut j).completion_mode = Some("Sometimes".into());
        assert_eq!(
            fields(&job(&j, None)),
            [
                "spec.parallelism",
                "spec.backoffLimit",
                "spec.completionMode"
            ]
        );
    }

    #[test]
    fn job_template_must_carry_generated_labels() {
        let mut j = new_job();
        if let Some(l) = spec(&mut j)
            .template
            .metadata
            .as_mut()
            .and_then(|m| m.labels.as_mut())
        {
            l.insert(JOB_NAME_LABEL.into(), "someone-else".into());
        }
        assert_eq!(
            fields(&job(&j, None)),
            ["spec.template.metadata.labels[batch.kubernetes.io/job-name]"]
        );
    }

    #[test]
    fn job_selector_must_be_generated_unless_manual() {
        let mut j = new_job();
        spec(&mut j).selector = Some(LabelSelector {
            match_labels: labels(&[("app", "pi")]),
            match_expressions: None,
        });
        assert_eq!(fields(&job(&j, None)), ["spec.selector"]);
        spec(&mut j).manual_selector = Some(true);
        assert_eq!(job(&j, None), Vec::new());
    }

    #[test]
    fn job_template_is_immutable_once_started() {
        let old = new_job();
        let mut new = old.clone();
        spec(&mut new)
            .template
            .spec
            .get_or_insert_with(Default::default)
            .containers[0]
            .image = Some("pi:v2".into());
        assert_eq!(fields(&job(&new, Some(&old))), ["spec.template"]);
        spec(&mut new).template = spec(&mut old.clone()).template.clone();
        spec(&mut new).completions = Some(3);
        assert_eq!(fields(&job(&new, Some(&old))), ["spec.completions"]);
    }

    #[test]
    fn suspended_job_may_change_where_pods_run() {
        let mut old = new_job();
        spec(&mut old).suspend = Some(true);
        let mut new = old.clone();
        spec(&mut new)
            .template
            .spec
            .get_or_insert_with(Default::default)
            .node_selector = labels(&[("disk", "ssd")]);
        assert_eq!(job(&new, Some(&old)), Vec::new());
        old.status = Some(JobStatus {
            start_time: Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        });
        assert_eq!(fields(&job(&new, Some(&old))), ["spec.template"]);
    }
}
