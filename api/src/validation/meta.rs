//! Metadata rules common to every kind.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use crate::error::FieldError;

pub fn validate_object_meta(meta: &ObjectMeta, _kind: &str, _namespaced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if meta.name.as_deref().unwrap_or("").is_empty() {
        errors.push(FieldError::required("metadata.name"));
    }
    errors
}

pub fn validate_meta_update(_new: &ObjectMeta, _old: &ObjectMeta) -> Vec<FieldError> {
    Vec::new()
}
