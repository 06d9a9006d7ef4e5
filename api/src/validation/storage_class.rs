//! Validation of StorageClasses (`storage.k8s.io/v1`): a provisioner is
//! required, reclaim policy and binding mode come from short lists, and
//! everything but metadata, mount options and expansion is fixed once the
//! class exists, as in Kubernetes.

use k8s_openapi::api::storage::v1::StorageClass;

use super::field::{Path, invalid_each, optional_one_of};
use super::names;
use crate::error::FieldError;

const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];
/// Kubernetes' limit on the total size of a class's parameters.
const MAX_PARAMETERS: usize = 512;

pub fn storage_class(obj: &StorageClass, old: Option<&StorageClass>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let provisioner = Path::new("provisioner");
    if obj.provisioner.is_empty() {
        errors.push(FieldError::required(&provisioner));
    } else {
        errors.extend(invalid_each(
            &provisioner,
            &obj.provisioner,
            names::is_qualified_name(&obj.provisioner.to_lowercase()),
        ));
    }
    optional_one_of(
        &mut errors,
        &Path::new("reclaimPolicy"),
        obj.reclaim_policy.as_deref(),
        RECLAIM_POLICIES,
    );
    optional_one_of(
        &mut errors,
        &Path::new("volumeBindingMode"),
        obj.volume_binding_mode.as_deref(),
        BINDING_MODES,
    );
    if let Some(parameters) = &obj.parameters {
        if parameters.len() > MAX_PARAMETERS {
            errors.push(FieldError::too_long("parameters", MAX_PARAMETERS));
        }
        for key in parameters.keys().filter(|k| k.is_empty()) {
            errors.push(FieldError::invalid(
                "parameters",
                key,
                "parameter keys must not be empty",
            ));
        }
    }
    let Some(old) = old else { return errors };
    if obj.parameters != old.parameters {
        errors.push(FieldError::forbidden(
            "parameters",
            "updates to parameters are forbidden.",
        ));
    }
    if obj.provisioner != old.provisioner {
        errors.push(FieldError::forbidden(
            "provisioner",
            "updates to provisioner are forbidden.",
        ));
    }
    if obj.reclaim_policy != old.reclaim_policy {
        errors.push(FieldError::forbidden(
            "reclaimPolicy",
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    if obj.volume_binding_mode != old.volume_binding_mode {
        errors.push(FieldError::forbidden(
            "volumeBindingMode",
            "field is immutable",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::testing::fields;

    fn class(provisioner: &str) -> StorageClass {
        let mut class = StorageClass {
            provisioner: provisioner.into(),
            ..StorageClass::default()
        };
        crate::defaults::storage_class(&mut class);
        class
    }

    #[test]
    fn provisioner_is_required_and_qualified() {
        assert_eq!(
            storage_class(&class("wasmpod.io/local-path"), None),
            Vec::new()
        );
        assert_eq!(fields(&storage_class(&class(""), None)), ["provisioner"]);
        assert_eq!(fields(&storage_class(&class("a b"), None)), ["provisioner"]);
    }

    #[test]
    fn defaults_are_delete_and_immediate() {
        let c = class("p");
        assert_eq!(c.reclaim_policy.as_deref(), Some("Delete"));
        assert_eq!(c.volume_binding_mode.as_deref(), Some("Immediate"));
    }

    #[test]
    fn policies_come_from_short_lists() {
        let mut c = class("p");
        c.reclaim_policy = Some("Recycle".into());
        c.volume_binding_mode = Some("Later".into());
        assert_eq!(
            fields(&storage_class(&c, None)),
            ["reclaimPolicy", "volumeBindingMode"]
        );
    }

    #[test]
    fn provisioner_and_policies_are_immutable() {
        let old = class("p");
        let mut new = class("q");
        new.reclaim_policy = Some("Retain".into());
        new.allow_volume_expansion = Some(true);
        assert_eq!(
            fields(&storage_class(&new, Some(&old))),
            ["provisioner", "reclaimPolicy"]
        );
    }
}
