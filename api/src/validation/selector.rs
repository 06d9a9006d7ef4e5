//! `LabelSelector` syntax (`ValidateLabelSelector`) as field errors, and
//! the check that a controller's selector selects its own template (the
//! matching itself is `crate::selector`'s).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::field::{Path, invalid_each, required_because};
use super::names;
use crate::error::FieldError;

const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];

/// Label keys must be qualified names.
pub fn validate_label_key(key: &str, path: &Path) -> Vec<FieldError> {
    invalid_each(path, key, names::is_qualified_name(key))
}

/// `ValidateLabels`: every key a qualified name, every value a label value.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        errors.extend(validate_label_key(k, path));
        errors.extend(invalid_each(path, v, names::is_valid_label_value(v)));
    }
    errors
}

pub fn validate_label_selector(selector: &LabelSelector, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, req) in selector.match_expressions.iter().flatten().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errors.push(required_because(
                        p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errors.push(FieldError::forbidden(
                        p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errors.push(FieldError::not_supported(
                p.child("operator"),
                other,
                OPERATORS,
            )),
        }
        errors.extend(validate_label_key(&req.key, &p.child("key")));
        for (j, v) in values.iter().enumerate() {
            errors.extend(invalid_each(
                &p.child("values").index(j),
                v,
                names::is_valid_label_value(v),
            ));
        }
    }
    errors.extend(validate_labels(
        selector.match_labels.as_ref(),
        &path.child("matchLabels"),
    ));
    errors
}

/// True when the selector selects nothing in particular (`{}`), which
/// controllers refuse because it would adopt every pod in the namespace.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// Labels as the JSON map `crate::selector` matches against.
fn as_json(
    labels: Option<&BTreeMap<String, String>>,
) -> serde_json::Map<String, serde_json::Value> {
    labels
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect()
}

/// Whether `labels` satisfy `selector`. An invalid selector selects
/// nothing here; its syntax errors are reported by `validate_label_selector`.
pub fn matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    crate::selector::LabelSelector::from_api(sel).is_ok_and(|s| s.matches(Some(&as_json(labels))))
}

/// A selector made of `matchLabels` only, as ReplicationControllers use.
pub fn map_matches(
    sel: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    crate::selector::LabelSelector::from_map(sel).is_ok_and(|s| s.matches(Some(&as_json(labels))))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["a", "b"]),
                req("canary", "DoesNotExist", &[]),
            ]),
        };
        assert!(matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "a")]))
        ));
        assert!(!matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "c")]))
        ));
        assert!(!matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "a"), ("canary", "1")]))
        ));
        assert!(!matches(&sel, None));
    }

    #[test]
    fn in_requires_values_and_exists_forbids_them() {
        let sel = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![
                req("a", "In", &[]),
                req("b", "Exists", &["x"]),
                req("c", "Has", &[]),
            ]),
        };
        let errs = validate_label_selector(&sel, &Path::new("spec.selector"));
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.selector.matchExpressions[0].values",
                "spec.selector.matchExpressions[1].values",
                "spec.selector.matchExpressions[2].operator"
            ]
        );
    }

    #[test]
    fn bad_label_keys_and_values_are_reported_on_the_map() {
        let errs = validate_labels(
            Some(&labels(&[("bad key", "ok"), ("ok", "-bad")])),
            &Path::new("metadata.labels"),
        );
        assert_eq!(errs.len(), 2);
        assert!(errs.iter().all(|e| e.field == "metadata.labels"));
    }
}
