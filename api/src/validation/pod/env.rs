//! Container `env` and `envFrom`: variable names, exactly one value source,
//! and the downward-API field paths a variable may read.

use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar, ObjectFieldSelector, ResourceFieldSelector,
};

use crate::error::FieldError;
use crate::validation::field::{Path, invalid_each, required_because};
use crate::validation::names;

/// Pod fields an environment variable may read through `fieldRef`.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Fields a downward-API volume file may additionally expose in whole.
pub const VOLUME_ONLY_FIELD_PATHS: &[&str] = &["metadata.labels", "metadata.annotations"];

const RESOURCE_FIELD_REFS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

pub fn validate_env(vars: &[EnvVar], path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, var) in vars.iter().enumerate() {
        let p = path.index(i);
        if var.name.is_empty() {
            errors.push(FieldError::required(p.child("name")));
        } else {
            errors.extend(invalid_each(
                &p.child("name"),
                &var.name,
                names::is_env_var_name(&var.name),
            ));
        }
        if let Some(source) = &var.value_from {
            let from = p.child("valueFrom");
            let count = [
                source.field_ref.is_some(),
                source.resource_field_ref.is_some(),
                source.config_map_key_ref.is_some(),
                source.secret_key_ref.is_some(),
            ]
            .into_iter()
            .filter(|b| *b)
            .count();
            if let Some(f) = &source.field_ref {
                errors.extend(validate_object_field_selector(
                    f,
                    &[],
                    &from.child("fieldRef"),
                ));
            }
            if let Some(r) = &source.resource_field_ref {
                errors.extend(validate_resource_field_selector(
                    r,
                    &from.child("resourceFieldRef"),
                ));
            }
            if let Some(c) = &source.config_map_key_ref {
                errors.extend(validate_key_selector(
                    &c.name,
                    &c.key,
                    &from.child("configMapKeyRef"),
                ));
            }
            if let Some(s) = &source.secret_key_ref {
                errors.extend(validate_key_selector(
                    &s.name,
                    &s.key,
                    &from.child("secretKeyRef"),
                ));
            }
            match count {
                0 => errors.push(FieldError::invalid(
                    &from,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )),
                1 => {}
                _ => errors.push(FieldError::invalid(&from, "", "may not have more than one field specified at a time")),
            }
            if var.value.as_deref().is_some_and(|v| !v.is_empty()) {
                errors.push(FieldError::invalid(
                    &from,
                    "",
                    "may not be specified when `value` is not empty",
                ));
            }
        }
    }
    errors
}

pub fn validate_env_from(sources: &[EnvFromSource], path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let p = path.index(i);
        if let Some(prefix) = source.prefix.as_deref().filter(|p| !p.is_empty()) {
            errors.extend(invalid_each(
                &p.child("prefix"),
                prefix,
                names::is_env_var_name(prefix),
            ));
        }
        let mut count = 0;
        if let Some(c) = &source.config_map_ref {
            count += 1;
            errors.extend(validate_object_name(
                &c.name,
                &p.child("configMapRef").child("name"),
            ));
        }
        if let Some(s) = &source.secret_ref {
            count += 1;
            errors.extend(validate_object_name(
                &s.name,
                &p.child("secretRef").child("name"),
            ));
        }
        match count {
            0 => errors.push(FieldError::invalid(
                &p,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            1 => {}
            _ => errors.push(FieldError::invalid(
                &p,
                "",
                "may not have more than one field specified at a time",
            )),
        }
    }
    errors
}

/// A reference to a ConfigMap or Secret by name.
fn validate_object_name(name: &str, path: &Path) -> Vec<FieldError> {
    if name.is_empty() {
        vec![FieldError::required(path)]
    } else {
        invalid_each(path, name, names::is_dns1123_subdomain(name))
    }
}

fn validate_key_selector(name: &str, key: &str, path: &Path) -> Vec<FieldError> {
    let mut errors = validate_object_name(name, &path.child("name"));
    if key.is_empty() {
        errors.push(FieldError::required(path.child("key")));
    } else {
        errors.extend(invalid_each(
            &path.child("key"),
            key,
            names::is_config_map_key(key),
        ));
    }
    errors
}

/// `fieldRef`: a supported pod field, or one label/annotation by subscript.
/// `extra` names whole-field paths allowed in this context (volumes).
pub fn validate_object_field_selector(
    sel: &ObjectFieldSelector,
    extra: &[&str],
    path: &Path,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match sel.api_version.as_deref() {
        None | Some("") => errors.push(FieldError::required(path.child("apiVersion"))),
        Some("v1") => {}
        Some(other) => {
            errors.push(FieldError::invalid(
                path.child("fieldPath"),
                &sel.field_path,
                format!("error converting fieldPath: unsupported version: {other}"),
            ));
            return errors;
        }
    }
    let fp = path.child("fieldPath");
    if sel.field_path.is_empty() {
        errors.push(FieldError::required(&fp));
        return errors;
    }
    if let Some((base, key)) = split_subscript(&sel.field_path) {
        match base {
            "metadata.labels" | "metadata.annotations" => {
                let key = if base == "metadata.annotations" {
                    key.to_lowercase()
                } else {
                    key.to_string()
                };
                errors.extend(invalid_each(&fp, &key, names::is_qualified_name(&key)));
            }
            _ => errors.push(FieldError::invalid(&fp, base, "does not support subscript")),
        }
    } else if !ENV_FIELD_PATHS.contains(&sel.field_path.as_str())
        && !extra.contains(&sel.field_path.as_str())
    {
        let mut supported: Vec<&str> = ENV_FIELD_PATHS.iter().chain(extra).copied().collect();
        supported.sort_unstable();
        errors.push(FieldError::not_supported(&fp, &sel.field_path, &supported));
    }
    errors
}

/// `metadata.labels['key']` -> (`metadata.labels`, `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_suffix("']")?;
    let (base, key) = rest.split_once("['")?;
    Some((base, key))
}

pub fn validate_resource_field_selector(
    sel: &ResourceFieldSelector,
    path: &Path,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if sel.resource.is_empty() {
        errors.push(FieldError::required(path.child("resource")));
    } else if !RESOURCE_FIELD_REFS.contains(&sel.resource.as_str())
        && !sel.resource.starts_with("limits.hugepages-")
        && !sel.resource.starts_with("requests.hugepages-")
    {
        errors.push(FieldError::not_supported(
            path.child("resource"),
            &sel.resource,
            RESOURCE_FIELD_REFS,
        ));
    }
    if let Some(divisor) = &sel.divisor {
        match crate::validation::quantity::parse(&divisor.0) {
            Ok(q) if q.nanos() > 0 => {}
            Ok(_) => errors.push(required_because(
                path.child("divisor"),
                "must be greater than zero",
            )),
            Err(_) => errors.push(FieldError::invalid(
                path.child("divisor"),
                &divisor.0,
                crate::validation::quantity::QUANTITY_FORMAT_ERROR,
            )),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvVarSource, SecretKeySelector,
    };

    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn field_ref(path: &str) -> EnvVarSource {
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: path.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_required_and_may_not_contain_equals() {
        let vars = vec![
            EnvVar {
                name: String::new(),
                ..Default::default()
            },
            EnvVar {
                name: "A=B".into(),
                ..Default::default()
            },
            EnvVar {
                name: "OK".into(),
                value: Some("1".into()),
                ..Default::default()
            },
        ];
        assert_eq!(
            fields(&validate_env(&vars, &Path::new("env"))),
            ["env[0].name", "env[1].name"]
        );
    }

    #[test]
    fn value_from_needs_exactly_one_source() {
        let two = EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: "cm".into(),
                key: "k".into(),
                optional: None,
            }),
            secret_key_ref: Some(SecretKeySelector {
                name: "s".into(),
                key: "k".into(),
                optional: None,
            }),
            ..Default::default()
        };
        let vars = vec![
            EnvVar {
                name: "A".into(),
                value_from: Some(EnvVarSource::default()),
                ..Default::default()
            },
            EnvVar {
                name: "B".into(),
                value_from: Some(two),
                ..Default::default()
            },
            EnvVar {
                name: "C".into(),
                value: Some("x".into()),
                value_from: Some(field_ref("metadata.name")),
            },
        ];
        let errs = validate_env(&vars, &Path::new("env"));
        assert_eq!(
            fields(&errs),
            ["env[0].valueFrom", "env[1].valueFrom", "env[2].valueFrom"]
        );
    }

    #[test]
    fn field_refs_name_supported_paths() {
        let ok = [
            "metadata.name",
            "status.podIP",
            "metadata.labels['app']",
            "metadata.annotations['a.b/c']",
        ];
        for path in ok {
            let vars = vec![EnvVar {
                name: "X".into(),
                value: None,
                value_from: Some(field_ref(path)),
            }];
            assert!(validate_env(&vars, &Path::new("env")).is_empty(), "{path}");
        }
        for path in ["metadata.labels", "spec.containers", "status.phase['x']"] {
            let vars = vec![EnvVar {
                name: "X".into(),
                value: None,
                value_from: Some(field_ref(path)),
            }];
            assert_eq!(
                fields(&validate_env(&vars, &Path::new("env"))),
                ["env[0].valueFrom.fieldRef.fieldPath"],
                "{path}"
            );
        }
    }

    #[test]
    fn env_from_needs_one_source() {
        let sources = vec![
            EnvFromSource::default(),
            EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "cm".into(),
                    optional: None,
                }),
                prefix: Some("P=".into()),
                secret_ref: None,
            },
        ];
        assert_eq!(
            fields(&validate_env_from(&sources, &Path::new("envFrom"))),
            ["envFrom[0]", "envFrom[1].prefix"]
        );
    }
}
