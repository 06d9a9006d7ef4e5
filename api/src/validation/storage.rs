//! Validation of PersistentVolumes and PersistentVolumeClaims: access
//! modes, sizes, the volume source (node-local directories on wasmpod),
//! and which parts may change once a volume or claim exists.

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
};

use super::diff::describe_changes;
use super::field::{Path, invalid_each, optional_one_of, required_because};
use super::names;
use super::pod::volume::{set_fields, validate_no_backsteps, validate_source_count};
use super::quantity;
use super::selector::validate_label_selector;
use crate::error::FieldError;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
/// PersistentVolume sources a wasmpod node can provide.
const SUPPORTED_PV_TYPES: &[&str] = &["hostPath", "local"];
/// PersistentVolumeSpec fields that are not a volume source.
const PV_NON_SOURCE_FIELDS: &[&str] = &[
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
];

fn validate_access_modes(
    modes: Option<&[String]>,
    path: &Path,
    required_detail: &str,
) -> Vec<FieldError> {
    let modes = modes.unwrap_or_default();
    let mut errors = Vec::new();
    if modes.is_empty() {
        errors.push(required_because(path, required_detail));
    }
    for mode in modes {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            errors.push(FieldError::not_supported(path, mode, ACCESS_MODES));
        }
    }
    if modes.len() > 1 && modes.iter().any(|m| m == "ReadWriteOncePod") {
        errors.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errors
}

fn validate_storage_class(name: Option<&str>, path: &Path) -> Vec<FieldError> {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => invalid_each(path, n, names::is_dns1123_subdomain(n)),
        None => Vec::new(),
    }
}

/// `ValidatePersistentVolumeClaimSpec`, shared with StatefulSet claim templates.
pub fn validate_pvc_spec(spec: &PersistentVolumeClaimSpec, path: &Path) -> Vec<FieldError> {
    let mut errors = validate_access_modes(
        spec.access_modes.as_deref(),
        &path.child("accessModes"),
        "at least 1 access mode is required",
    );
    if let Some(selector) = &spec.selector {
        errors.extend(validate_label_selector(selector, &path.child("selector")));
    }
    let storage_path = path.child("resources").key("storage");
    match spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
    {
        None => errors.push(FieldError::required(&storage_path)),
        Some(q) => match quantity::parse(&q.0) {
            Err(_) => errors.push(FieldError::invalid(
                &storage_path,
                &q.0,
                quantity::QUANTITY_FORMAT_ERROR,
            )),
            Ok(v) if v.nanos() <= 0 => errors.push(FieldError::invalid(
                &storage_path,
                &q.0,
                "must be greater than zero",
            )),
            Ok(_) => {}
        },
    }
    errors.extend(validate_storage_class(
        spec.storage_class_name.as_deref(),
        &path.child("storageClassName"),
    ));
    optional_one_of(
        &mut errors,
        &path.child("volumeMode"),
        spec.volume_mode.as_deref(),
        VOLUME_MODES,
    );
    errors
}

pub fn persistent_volume(
    obj: &PersistentVolume,
    old: Option<&PersistentVolume>,
) -> Vec<FieldError> {
    let default_spec = PersistentVolumeSpec::default();
    let spec = obj.spec.as_ref().unwrap_or(&default_spec);
    let path = Path::new("spec");
    let mut errors =
        validate_access_modes(spec.access_modes.as_deref(), &path.child("accessModes"), "");

    let capacity_path = path.child("capacity");
    match spec.capacity.as_ref().filter(|c| !c.is_empty()) {
        None => errors.push(FieldError::required(&capacity_path)),
        Some(capacity) => {
            let keys: Vec<&str> = capacity.keys().map(String::as_str).collect();
            if keys != ["storage"] {
                errors.push(FieldError::not_supported(
                    &capacity_path,
                    keys.join(","),
                    &["storage"],
                ));
            }
            for (k, q) in capacity {
                match quantity::parse(&q.0) {
                    Err(_) => errors.push(FieldError::invalid(
                        capacity_path.key(k),
                        &q.0,
                        quantity::QUANTITY_FORMAT_ERROR,
                    )),
                    Ok(v) if v.is_negative() => {
                        errors.push(FieldError::invalid(
                            capacity_path.key(k),
                            &q.0,
                            super::field::NONNEGATIVE,
                        ));
                    }
                    Ok(_) => {}
                }
            }
        }
    }
    optional_one_of(
        &mut errors,
        &path.child("persistentVolumeReclaimPolicy"),
        spec.persistent_volume_reclaim_policy.as_deref(),
        RECLAIM_POLICIES,
    );
    optional_one_of(
        &mut errors,
        &path.child("volumeMode"),
        spec.volume_mode.as_deref(),
        VOLUME_MODES,
    );
    errors.extend(validate_storage_class(
        spec.storage_class_name.as_deref(),
        &path.child("storageClassName"),
    ));

    let sources = set_fields(spec, PV_NON_SOURCE_FIELDS);
    validate_source_count(&sources, SUPPORTED_PV_TYPES, "volume", &path, &mut errors);
    if let Some(host) = &spec.host_path {
        if host.path.is_empty() {
            errors.push(FieldError::required(path.child("hostPath").child("path")));
        }
        errors.extend(validate_no_backsteps(
            &host.path,
            &path.child("hostPath").child("path"),
        ));
    }
    if let Some(local) = &spec.local {
        let lp = path.child("local").child("path");
        if local.path.is_empty() {
            errors.push(FieldError::required(&lp));
        }
        errors.extend(validate_no_backsteps(&local.path, &lp));
        if spec.node_affinity.is_none() {
            errors.push(required_because(
                path.child("nodeAffinity"),
                "Local volume requires node affinity",
            ));
        }
    }

    if let Some(old_spec) = old.and_then(|o| o.spec.as_ref()) {
        let source_of = |s: &PersistentVolumeSpec| {
            (
                s.host_path.clone(),
                s.local.clone(),
                set_fields(s, PV_NON_SOURCE_FIELDS),
            )
        };
        if source_of(spec) != source_of(old_spec) {
            errors.push(FieldError::forbidden(
                path.child("persistentvolumesource"),
                "spec.persistentvolumesource is immutable after creation",
            ));
        }
        if spec.volume_mode != old_spec.volume_mode {
            errors.push(FieldError::immutable(path.child("volumeMode")));
        }
        if old_spec.node_affinity.is_some() && spec.node_affinity != old_spec.node_affinity {
            errors.push(FieldError::immutable(path.child("nodeAffinity")));
        }
    }
    errors
}

pub fn persistent_volume_claim(
    obj: &PersistentVolumeClaim,
    old: Option<&PersistentVolumeClaim>,
) -> Vec<FieldError> {
    let default_spec = PersistentVolumeClaimSpec::default();
    let spec = obj.spec.as_ref().unwrap_or(&default_spec);
    let path = Path::new("spec");
    let mut errors = validate_pvc_spec(spec, &path);
    let Some(old) = old else { return errors };
    let old_spec = old.spec.as_ref().unwrap_or(&default_spec);

    // The volume controller binds a claim by setting volumeName once; a
    // bound claim may grow (never shrink) its storage request.
    let mut munged = spec.clone();
    if old_spec
        .volume_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        munged.volume_name.clone_from(&old_spec.volume_name);
    }
    let bound = obj.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let storage = |s: &PersistentVolumeClaimSpec| {
        s.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .cloned()
    };
    if bound
        && let (Some(resources), Some(old_storage)) = (munged.resources.as_mut(), storage(old_spec))
    {
        resources
            .requests
            .get_or_insert_with(Default::default)
            .insert("storage".into(), old_storage);
    }
    if munged != *old_spec {
        let changes = describe_changes(old_spec, &munged, &path);
        errors.push(FieldError::forbidden(
            &path,
            format!("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{changes}"),
        ));
    }
    if let (Some(new_q), Some(old_q)) = (storage(spec), storage(old_spec))
        && quantity::compare(&new_q.0, &old_q.0) == Some(std::cmp::Ordering::Less)
    {
        errors.push(FieldError::forbidden(
            path.child("resources").child("requests").child("storage"),
            "field can not be less than previous value",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        HostPathVolumeSource, LocalVolumeSource, NFSVolumeSource, PersistentVolumeClaimStatus,
        VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;
    use crate::validation::testing::fields;

    fn pv(spec: PersistentVolumeSpec) -> PersistentVolume {
        let mut pv = PersistentVolume {
            spec: Some(spec),
            ..Default::default()
        };
        crate::defaults::persistent_volume(&mut pv);
        pv
    }

    fn host_pv() -> PersistentVolumeSpec {
        PersistentVolumeSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            capacity: Some([("storage".to_string(), Quantity("5Gi".into()))].into()),
            host_path: Some(HostPathVolumeSource {
                path: "/srv/pv1".into(),
                type_: None,
            }),
            ..Default::default()
        }
    }

    fn claim(size: &str) -> PersistentVolumeClaim {
        let mut c = PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some([("storage".to_string(), Quantity(size.into()))].into()),
                    limits: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        crate::defaults::persistent_volume_claim(&mut c);
        c
    }

    #[test]
    fn host_path_volume_is_valid() {
        assert_eq!(persistent_volume(&pv(host_pv()), None), Vec::new());
    }

    #[test]
    fn volume_needs_capacity_access_modes_and_one_source() {
        let errs = persistent_volume(&pv(PersistentVolumeSpec::default()), None);
        assert_eq!(fields(&errs), ["spec.accessModes", "spec.capacity", "spec"]);
    }

    #[test]
    fn volume_sources_other_than_node_local_are_rejected() {
        let mut spec = host_pv();
        spec.host_path = None;
        spec.nfs = Some(NFSVolumeSource {
            path: "/x".into(),
            server: "nfs".into(),
            read_only: None,
        });
        assert_eq!(fields(&persistent_volume(&pv(spec), None)), ["spec.nfs"]);
    }

    #[test]
    fn local_volumes_need_node_affinity() {
        let mut spec = host_pv();
        spec.host_path = None;
        spec.local = Some(LocalVolumeSource {
            path: "/mnt/disk".into(),
            fs_type: None,
        });
        assert_eq!(
            fields(&persistent_volume(&pv(spec), None)),
            ["spec.nodeAffinity"]
        );
    }

    #[test]
    fn volume_source_is_immutable() {
        let old = pv(host_pv());
        let mut new = old.clone();
        new.spec.get_or_insert_with(Default::default).host_path = Some(HostPathVolumeSource {
            path: "/other".into(),
            type_: None,
        });
        assert_eq!(
            fields(&persistent_volume(&new, Some(&old))),
            ["spec.persistentvolumesource"]
        );
    }

    #[test]
    fn claim_needs_access_modes_and_storage() {
        let mut c = claim("1Gi");
        assert_eq!(persistent_volume_claim(&c, None), Vec::new());
        c.spec = Some(PersistentVolumeClaimSpec {
            volume_mode: Some("Filesystem".into()),
            ..Default::default()
        });
        assert_eq!(
            fields(&persistent_volume_claim(&c, None)),
            ["spec.accessModes", "spec.resources[storage]"]
        );
    }

    #[test]
    fn claim_spec_is_immutable_except_growing_bound_storage() {
        let old = claim("1Gi");
        let mut new = claim("2Gi");
        // Unbound claims may not be resized.
        assert_eq!(fields(&persistent_volume_claim(&new, Some(&old))), ["spec"]);
        new.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Bound".into()),
            ..Default::default()
        });
        assert_eq!(persistent_volume_claim(&new, Some(&old)), Vec::new());
        let mut smaller = claim("512Mi");
        smaller.status.clone_from(&new.status);
        assert_eq!(
            fields(&persistent_volume_claim(&smaller, Some(&old))),
            ["spec.resources.requests.storage"]
        );
        // Binding sets volumeName once.
        let mut bound = old.clone();
        bound.spec.get_or_insert_with(Default::default).volume_name = Some("pv1".into());
        assert_eq!(persistent_volume_claim(&bound, Some(&old)), Vec::new());
        let mut rebound = bound.clone();
        rebound
            .spec
            .get_or_insert_with(Default::default)
            .volume_name = Some("pv2".into());
        assert_eq!(
            fields(&persistent_volume_claim(&rebound, Some(&bound))),
            ["spec"]
        );
    }
}
