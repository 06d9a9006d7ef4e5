//! Rules every controller object shares: its selector must be valid,
//! non-empty and select its own pod template, the template must be a valid
//! pod template, and rollout budgets are counts or percentages.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::field::{NONNEGATIVE, Path, invalid_each};
use super::names;
use super::pod::{SpecOf, validate_pod_spec_with_volumes, validate_template_metadata};
use super::selector::{self, validate_label_selector};
use crate::error::FieldError;

pub const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

/// Labels as `k=v,k2=v2`, for error messages.
pub fn labels_display(labels: Option<&BTreeMap<String, String>>) -> String {
    labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn template_labels(template: &PodTemplateSpec) -> Option<&BTreeMap<String, String>> {
    template.metadata.as_ref().and_then(|m| m.labels.as_ref())
}

/// A controller's `LabelSelector`: valid, not empty, and matching the template.
pub fn validate_selector_for_template(
    sel: &LabelSelector,
    template: Option<&PodTemplateSpec>,
    spec: &Path,
    kind: &str,
) -> Vec<FieldError> {
    let mut errors = validate_label_selector(sel, &spec.child("selector"));
    if selector::is_empty(sel) {
        errors.push(FieldError::invalid(
            spec.child("selector"),
            "{}",
            format!("empty selector is invalid for {}", kind.to_lowercase()),
        ));
    } else if let Some(t) = template
        && !selector::matches(sel, template_labels(t))
    {
        let path = spec.child("template").child("metadata").child("labels");
        errors.push(FieldError::invalid(
            path,
            labels_display(template_labels(t)),
            SELECTOR_MISMATCH,
        ));
    }
    errors
}

/// The pod template of a controller whose pods run until replaced: the
/// pod spec rules, `restartPolicy: Always`, and no `activeDeadlineSeconds`.
pub fn validate_long_running_template(
    template: Option<&PodTemplateSpec>,
    path: &Path,
    kind: &str,
    extra_volumes: &[String],
) -> Vec<FieldError> {
    let Some(template) = template else {
        return vec![FieldError::required(path)];
    };
    let mut errors = validate_template_metadata(template.metadata.as_ref(), path);
    let default_spec = PodSpec::default();
    let spec = template.spec.as_ref().unwrap_or(&default_spec);
    let spec_path = path.child("spec");
    errors.extend(validate_pod_spec_with_volumes(
        spec,
        &spec_path,
        SpecOf::Template,
        extra_volumes,
    ));
    if let Some(policy) = spec
        .restart_policy
        .as_deref()
        .filter(|p| !p.is_empty() && *p != "Always")
    {
        errors.push(FieldError::not_supported(
            spec_path.child("restartPolicy"),
            policy,
            &["Always"],
        ));
    }
    if spec.active_deadline_seconds.is_some() {
        errors.push(FieldError::forbidden(
            spec_path.child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errors
}

pub fn int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(s) => s
            .strip_suffix('%')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

/// `ValidatePositiveIntOrPercent`: a non-negative count or a `N%` string.
pub fn validate_int_or_percent(v: Option<&IntOrString>, path: &Path, errors: &mut Vec<FieldError>) {
    match v {
        Some(IntOrString::String(s)) => {
            errors.extend(invalid_each(path, s, names::is_valid_percent(s)))
        }
        Some(IntOrString::Int(n)) if *n < 0 => {
            errors.push(FieldError::invalid(path, n, NONNEGATIVE))
        }
        _ => {}
    }
}

pub fn not_more_than_100_percent(
    v: Option<&IntOrString>,
    path: &Path,
    errors: &mut Vec<FieldError>,
) {
    if let Some(IntOrString::String(s)) = v
        && names::is_valid_percent(s).is_empty()
        && int_or_percent_value(&IntOrString::String(s.clone())) > 100
    {
        errors.push(FieldError::invalid(
            path,
            s,
            "must not be greater than 100%",
        ));
    }
}

pub fn display(v: Option<&IntOrString>) -> String {
    match v {
        Some(IntOrString::Int(n)) => n.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => String::new(),
    }
}
