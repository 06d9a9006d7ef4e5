//! Pod `volumes`: unique DNS-label names, exactly one source of a type the
//! wasmpod node can provide, and each source's own fields.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{KeyToPath, Volume};
use serde::Serialize;

use super::env::{
    VOLUME_ONLY_FIELD_PATHS, validate_object_field_selector, validate_resource_field_selector,
};
use crate::error::FieldError;
use crate::validation::field::{Path, invalid_each, required_because};
use crate::validation::names;
use crate::validation::quantity;

/// Volume sources a wasmpod node can provide: all are directories of the
/// node's filesystem exposed to the pod's modules.
pub const SUPPORTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "downwardAPI",
    "emptyDir",
    "hostPath",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// The JSON names of the fields set on `value` other than `except`: which
/// sources a volume (or persistent volume) specifies, without listing every
/// cloud volume type of the upstream API by hand.
pub fn set_fields<T: Serialize>(value: &T, except: &[&str]) -> Vec<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter(|(k, v)| !v.is_null() && !except.contains(&k.as_str()))
            .map(|(k, _)| k)
            .collect(),
        _ => Vec::new(),
    }
}

/// Checks a set of sources: one required, one allowed, each supported.
pub fn validate_source_count(
    sources: &[String],
    supported: &[&str],
    kind: &str,
    path: &Path,
    errors: &mut Vec<FieldError>,
) {
    if sources.is_empty() {
        errors.push(required_because(
            path,
            &format!("must specify a {kind} type"),
        ));
    }
    for (i, source) in sources.iter().enumerate() {
        if i > 0 {
            errors.push(FieldError::forbidden(
                path.child(source),
                format!("may not specify more than 1 {kind} type"),
            ));
        }
        if !supported.contains(&source.as_str()) {
            errors.push(FieldError::forbidden(
                path.child(source),
                format!(
                    "{kind} type not supported by wasmpod; supported types: {}",
                    supported.join(", ")
                ),
            ));
        }
    }
}

/// Validates `volumes` and returns the declared names (for `volumeMounts`).
pub fn validate_volumes(
    volumes: &[Volume],
    path: &Path,
    errors: &mut Vec<FieldError>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name_path = p.child("name");
        if vol.name.is_empty() {
            errors.push(FieldError::required(&name_path));
        } else {
            errors.extend(invalid_each(
                &name_path,
                &vol.name,
                names::is_dns1123_label(&vol.name),
            ));
        }
        if !seen.insert(vol.name.clone()) {
            errors.push(FieldError::duplicate(&name_path, &vol.name));
        }
        let sources = set_fields(vol, &["name"]);
        validate_source_count(&sources, SUPPORTED_VOLUME_TYPES, "volume", &p, errors);
        validate_volume_source(vol, &p, errors);
    }
    seen
}

fn validate_volume_source(vol: &Volume, p: &Path, errors: &mut Vec<FieldError>) {
    if let Some(host) = &vol.host_path {
        let hp = p.child("hostPath");
        if host.path.is_empty() {
            errors.push(FieldError::required(hp.child("path")));
        } else {
            errors.extend(validate_no_backsteps(&host.path, &hp.child("path")));
        }
        let ty = host.type_.as_deref().unwrap_or_default();
        if !HOST_PATH_TYPES.contains(&ty) {
            errors.push(FieldError::not_supported(
                hp.child("type"),
                ty,
                HOST_PATH_TYPES,
            ));
        }
    }
    if let Some(empty) = &vol.empty_dir {
        let ep = p.child("emptyDir");
        let medium = empty.medium.as_deref().unwrap_or_default();
        if !(medium.is_empty() || medium == "Memory" || medium.starts_with("HugePages")) {
            errors.push(FieldError::not_supported(
                ep.child("medium"),
                medium,
                &["", "Memory"],
            ));
        }
        if let Some(limit) = &empty.size_limit
            && quantity::parse(&limit.0).map_or(true, |q| q.is_negative())
        {
            errors.push(FieldError::forbidden(
                ep.child("sizeLimit"),
                "SizeLimit field must be a valid resource quantity",
            ));
        }
    }
    if let Some(cm) = &vol.config_map {
        let cp = p.child("configMap");
        if cm.name.is_empty() {
            errors.push(FieldError::required(cp.child("name")));
        }
        validate_mode(cm.default_mode, &cp.child("defaultMode"), errors);
        validate_items(
            cm.items.as_deref().unwrap_or_default(),
            &cp.child("items"),
            errors,
        );
    }
    if let Some(secret) = &vol.secret {
        let sp = p.child("secret");
        if secret.secret_name.as_deref().unwrap_or_default().is_empty() {
            errors.push(FieldError::required(sp.child("secretName")));
        }
        validate_mode(secret.default_mode, &sp.child("defaultMode"), errors);
        validate_items(
            secret.items.as_deref().unwrap_or_default(),
            &sp.child("items"),
            errors,
        );
    }
    if let Some(pvc) = &vol.persistent_volume_claim
        && pvc.claim_name.is_empty()
    {
        errors.push(FieldError::required(
            p.child("persistentVolumeClaim").child("claimName"),
        ));
    }
    if let Some(downward) = &vol.downward_api {
        let dp = p.child("downwardAPI");
        validate_mode(downward.default_mode, &dp.child("defaultMode"), errors);
        for (j, item) in downward.items.iter().flatten().enumerate() {
            let ip = dp.child("items").index(j);
            if item.path.is_empty() {
                errors.push(FieldError::required(ip.child("path")));
            } else {
                errors.extend(validate_local_path(&item.path, &ip.child("path")));
            }
            validate_mode(item.mode, &ip.child("mode"), errors);
            match (&item.field_ref, &item.resource_field_ref) {
                (Some(f), None) => errors.extend(validate_object_field_selector(
                    f,
                    VOLUME_ONLY_FIELD_PATHS,
                    &ip.child("fieldRef"),
                )),
                (None, Some(r)) => errors.extend(validate_resource_field_selector(
                    r,
                    &ip.child("resourceFieldRef"),
                )),
                (Some(_), Some(_)) => errors.push(FieldError::invalid(
                    ip.child("fieldRef"),
                    "",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                )),
                (None, None) => errors.push(required_because(
                    &ip,
                    "one of fieldRef and resourceFieldRef is required",
                )),
            }
        }
    }
    if let Some(projected) = &vol.projected {
        let pp = p.child("projected");
        validate_mode(projected.default_mode, &pp.child("defaultMode"), errors);
        for (j, source) in projected.sources.iter().flatten().enumerate() {
            let sp = pp.child("sources").index(j);
            let kinds = set_fields(source, &[]);
            if kinds.is_empty() {
                errors.push(required_because(&sp, "must specify at least 1 volume type"));
            }
            for extra in kinds.iter().skip(1) {
                errors.push(FieldError::forbidden(
                    sp.child(extra),
                    "may not specify more than 1 volume type per source",
                ));
            }
            if let Some(cm) = &source.config_map {
                validate_items(
                    cm.items.as_deref().unwrap_or_default(),
                    &sp.child("configMap").child("items"),
                    errors,
                );
            }
            if let Some(secret) = &source.secret {
                validate_items(
                    secret.items.as_deref().unwrap_or_default(),
                    &sp.child("secret").child("items"),
                    errors,
                );
            }
            if let Some(token) = &source.service_account_token {
                let tp = sp.child("serviceAccountToken");
                if token.path.is_empty() {
                    errors.push(FieldError::required(tp.child("path")));
                }
                if let Some(seconds) = token.expiration_seconds.filter(|s| *s < 600) {
                    errors.push(FieldError::invalid(
                        tp.child("expirationSeconds"),
                        seconds,
                        "may not specify a duration less than 10 minutes",
                    ));
                }
            }
        }
    }
}

fn validate_mode(mode: Option<i32>, path: &Path, errors: &mut Vec<FieldError>) {
    if let Some(m) = mode.filter(|m| !(0..=0o777).contains(m)) {
        errors.push(FieldError::invalid(path, m, FILE_MODE_ERROR));
    }
}

fn validate_items(items: &[KeyToPath], path: &Path, errors: &mut Vec<FieldError>) {
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        if item.key.is_empty() {
            errors.push(FieldError::required(p.child("key")));
        }
        if item.path.is_empty() {
            errors.push(FieldError::required(p.child("path")));
        } else {
            errors.extend(validate_local_path(&item.path, &p.child("path")));
        }
        validate_mode(item.mode, &p.child("mode"), errors);
    }
}

/// `validatePathNoBacksteps`: no `..` path element.
pub fn validate_no_backsteps(path_value: &str, path: &Path) -> Vec<FieldError> {
    if path_value.split(['/', '\\']).any(|part| part == "..") {
        vec![FieldError::invalid(
            path,
            path_value,
            "must not contain '..'",
        )]
    } else {
        Vec::new()
    }
}

/// `validateLocalDescendingPath`: relative and without `..` elements.
pub fn validate_local_descending_path(path_value: &str, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if path_value.starts_with('/') {
        errors.push(FieldError::invalid(
            path,
            path_value,
            "must be a relative path",
        ));
    }
    errors.extend(validate_no_backsteps(path_value, path));
    errors
}

/// `ValidateLocalNonReservedPath`: a descending path not starting with `..`
/// (which the atomic writer of projected volumes reserves).
fn validate_local_path(path_value: &str, path: &Path) -> Vec<FieldError> {
    let mut errors = validate_local_descending_path(path_value, path);
    if path_value.starts_with("..") {
        errors.push(FieldError::invalid(
            path,
            path_value,
            "must not start with '..'",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, NFSVolumeSource,
    };

    use super::*;

    fn check(volumes: &[Volume]) -> (Vec<FieldError>, BTreeSet<String>) {
        let mut errors = Vec::new();
        let names = validate_volumes(volumes, &Path::new("spec.volumes"), &mut errors);
        (errors, names)
    }

    fn empty_dir(name: &str) -> Volume {
        Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn volume_names_are_unique_dns_labels() {
        let (errs, names) = check(&[empty_dir("data"), empty_dir("data"), empty_dir("Bad_Name")]);
        assert_eq!(
            fields(&errs),
            ["spec.volumes[1].name", "spec.volumes[2].name"]
        );
        assert_eq!(errs[0].reason, "FieldValueDuplicate");
        assert!(names.contains("data"));
    }

    #[test]
    fn volume_needs_exactly_one_source() {
        let none = Volume {
            name: "a".into(),
            ..Default::default()
        };
        let two = Volume {
            name: "b".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            host_path: Some(HostPathVolumeSource {
                path: "/tmp".into(),
                type_: None,
            }),
            ..Default::default()
        };
        let (errs, _) = check(&[none, two]);
        assert_eq!(
            fields(&errs),
            ["spec.volumes[0]", "spec.volumes[1].hostPath"]
        );
        assert_eq!(
            errs[1].message,
            "Forbidden: may not specify more than 1 volume type"
        );
    }

    #[test]
    fn unsupported_volume_types_are_rejected() {
        let nfs = Volume {
            name: "n".into(),
            nfs: Some(NFSVolumeSource {
                path: "/x".into(),
                server: "s".into(),
                read_only: None,
            }),
            ..Default::default()
        };
        let (errs, _) = check(&[nfs]);
        assert_eq!(fields(&errs), ["spec.volumes[0].nfs"]);
    }

    #[test]
    fn source_fields_are_checked() {
        let cm = Volume {
            name: "c".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: String::new(),
                default_mode: Some(0o1777),
                items: Some(vec![KeyToPath {
                    key: "k".into(),
                    path: "../escape".into(),
                    mode: None,
                }]),
                optional: None,
            }),
            ..Default::default()
        };
        let hp = Volume {
            name: "h".into(),
            host_path: Some(HostPathVolumeSource {
                path: "/a/../b".into(),
                type_: Some("Dir".into()),
            }),
            ..Default::default()
        };
        let (errs, _) = check(&[cm, hp]);
        assert_eq!(
            fields(&errs),
            [
                "spec.volumes[0].configMap.name",
                "spec.volumes[0].configMap.defaultMode",
                "spec.volumes[0].configMap.items[0].path",
                "spec.volumes[0].configMap.items[0].path",
                "spec.volumes[1].hostPath.path",
                "spec.volumes[1].hostPath.type"
            ]
        );
    }
}
