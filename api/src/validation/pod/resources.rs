//! Container `resources`: resource names, parseable non-negative
//! quantities, and requests within limits (`ValidateResourceRequirements`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::FieldError;
use crate::validation::field::{NONNEGATIVE, Path, invalid_each, required_because};
use crate::validation::names;
use crate::validation::quantity::{self, ParsedQuantity, QUANTITY_FORMAT_ERROR};

/// Resources that may be requested below their limit; for every other
/// resource (hugepages, extended resources) requests must equal limits.
pub fn is_overcommit_allowed(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage")
}

fn is_standard_container_resource(name: &str) -> bool {
    is_overcommit_allowed(name) || name.starts_with("hugepages-")
}

fn validate_resource_name(name: &str, path: &Path) -> Vec<FieldError> {
    if name.contains('/') {
        let mut errors = invalid_each(path, name, names::is_qualified_name(name));
        if errors.is_empty() && name.starts_with("requests.") {
            errors.push(FieldError::invalid(
                path,
                name,
                "doesn't follow extended resource name standard",
            ));
        }
        errors
    } else if is_standard_container_resource(name) {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            name,
            "must be a standard resource for containers",
        )]
    }
}

/// Parses a quantity, reporting it at `path` when it does not parse or is negative.
fn validate_quantity(
    name: &str,
    value: &Quantity,
    path: &Path,
    errors: &mut Vec<FieldError>,
) -> Option<ParsedQuantity> {
    match quantity::parse(&value.0) {
        Err(_) => {
            errors.push(FieldError::invalid(path, &value.0, QUANTITY_FORMAT_ERROR));
            None
        }
        Ok(q) if q.is_negative() => {
            errors.push(FieldError::invalid(path, &value.0, NONNEGATIVE));
            None
        }
        Ok(q) => {
            // Extended resources are counted in whole units.
            if !is_standard_container_resource(name) && !q.is_whole() {
                errors.push(FieldError::invalid(path, &value.0, "must be an integer"));
            }
            Some(q)
        }
    }
}

pub fn validate_resource_requirements(req: &ResourceRequirements, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let empty = BTreeMap::new();
    let limits = req.limits.as_ref().unwrap_or(&empty);
    let requests = req.requests.as_ref().unwrap_or(&empty);

    let mut parsed_limits = BTreeMap::new();
    for (name, value) in limits {
        let p = lim_path.key(name);
        errors.extend(validate_resource_name(name, &p));
        if let Some(q) = validate_quantity(name, value, &p, &mut errors) {
            parsed_limits.insert(name.as_str(), (q, value));
        }
    }
    for (name, value) in requests {
        let p = req_path.key(name);
        errors.extend(validate_resource_name(name, &p));
        let Some(q) = validate_quantity(name, value, &p, &mut errors) else {
            continue;
        };
        match parsed_limits.get(name.as_str()) {
            Some((limit, limit_str)) if q != *limit && !is_overcommit_allowed(name) => {
                errors.push(FieldError::invalid(
                    &req_path,
                    &value.0,
                    format!("must be equal to {name} limit of {}", limit_str.0),
                ));
            }
            Some((limit, limit_str)) if q > *limit => {
                errors.push(FieldError::invalid(
                    &req_path,
                    &value.0,
                    format!(
                        "must be less than or equal to {name} limit of {}",
                        limit_str.0
                    ),
                ));
            }
            None if !is_overcommit_allowed(name) && !limits.contains_key(name) => {
                errors.push(required_because(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            _ => {}
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> ResourceRequirements {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect(),
            )
        };
        ResourceRequirements {
            limits: map(limits),
            requests: map(requests),
            claims: None,
        }
    }

    fn check(r: &ResourceRequirements) -> Vec<FieldError> {
        validate_resource_requirements(r, &Path::new("spec.containers[0].resources"))
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        let errs = check(&reqs(
            &[("cpu", "500m"), ("memory", "64Mi")],
            &[("cpu", "1"), ("memory", "64Mi")],
        ));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.containers[0].resources.requests");
        assert_eq!(
            errs[0].message,
            "Invalid value: \"1\": must be less than or equal to cpu limit of 500m"
        );
        assert!(check(&reqs(&[("cpu", "1")], &[("cpu", "1000m")])).is_empty());
    }

    #[test]
    fn quantities_must_parse_and_be_nonnegative() {
        let errs = check(&reqs(&[("memory", "lots")], &[("cpu", "-1")]));
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.containers[0].resources.limits[memory]",
                "spec.containers[0].resources.requests[cpu]"
            ]
        );
    }

    #[test]
    fn resource_names_must_be_standard_or_qualified() {
        let errs = check(&reqs(
            &[("gpu", "1"), ("example.com/gpu", "1")],
            &[("example.com/gpu", "1")],
        ));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.containers[0].resources.limits[gpu]");
    }

    #[test]
    fn extended_resources_need_equal_limits() {
        let errs = check(&reqs(&[], &[("example.com/gpu", "1")]));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.containers[0].resources.limits");
        let errs = check(&reqs(
            &[("example.com/gpu", "2")],
            &[("example.com/gpu", "1")],
        ));
        assert_eq!(errs.len(), 1);
    }
}
