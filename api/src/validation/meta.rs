//! Metadata rules common to every kind (`ValidateObjectMeta`,
//! `ValidateObjectMetaUpdate`): names, namespace, labels, annotations,
//! owner references, finalizers, and what an update may not change.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::field::{Path, invalid_each, required_because};
use super::names;
use super::selector::{validate_label_key, validate_labels};
use crate::error::FieldError;

/// Total size of all annotation keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Finalizers Kubernetes itself defines without a domain prefix.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// How a kind's object names are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Most kinds: a DNS-1123 subdomain (253 characters, dots allowed).
    Subdomain,
    /// Namespaces: a DNS-1123 label (they become DNS labels of service names).
    Label,
    /// Services: a DNS-1035 label (starts with a letter; it is a DNS name and
    /// an environment variable prefix).
    Dns1035Label,
    /// RBAC kinds: any string usable as one URL path segment (`system:admin`).
    PathSegment,
}

impl NameRule {
    pub fn for_kind(kind: &str) -> Self {
        match kind {
            "Namespace" => NameRule::Label,
            "Service" => NameRule::Dns1035Label,
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => NameRule::PathSegment,
            _ => NameRule::Subdomain,
        }
    }

    pub fn check(self, name: &str) -> Vec<String> {
        match self {
            NameRule::Subdomain => names::is_dns1123_subdomain(name),
            NameRule::Label => names::is_dns1123_label(name),
            NameRule::Dns1035Label => names::is_dns1035_label(name),
            NameRule::PathSegment => names::is_path_segment_name(name),
        }
    }
}

/// Validates the metadata of a new or updated object of `kind`.
pub fn validate_object_meta(meta: &ObjectMeta, kind: &str, namespaced: bool) -> Vec<FieldError> {
    let path = Path::new("metadata");
    let mut errors = Vec::new();

    match meta.name.as_deref() {
        None | Some("") => errors.push(required_because(
            path.child("name"),
            "name or generateName is required",
        )),
        Some(name) => {
            errors.extend(invalid_each(
                &path.child("name"),
                name,
                NameRule::for_kind(kind).check(name),
            ));
        }
    }

    match (namespaced, meta.namespace.as_deref()) {
        (true, None | Some("")) => errors.push(FieldError::required(path.child("namespace"))),
        (true, Some(ns)) => errors.extend(invalid_each(
            &path.child("namespace"),
            ns,
            names::is_dns1123_label(ns),
        )),
        (false, Some(ns)) if !ns.is_empty() => {
            errors.push(FieldError::forbidden(
                path.child("namespace"),
                "not allowed on this type",
            ));
        }
        (false, _) => {}
    }

    if let Some(generation) = meta.generation.filter(|g| *g < 0) {
        errors.push(FieldError::invalid(
            path.child("generation"),
            generation,
            super::field::NONNEGATIVE,
        ));
    }
    errors.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errors.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errors.extend(validate_owner_references(
        meta.owner_references.as_deref(),
        &path.child("ownerReferences"),
    ));
    errors.extend(validate_finalizers(
        meta.finalizers.as_deref(),
        &path.child("finalizers"),
    ));
    errors
}

/// `ValidateAnnotations`: qualified keys and a total size limit.
pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        // Kubernetes lower-cases keys before checking them, so upper-case
        // annotation keys that were accepted historically stay valid.
        errors.extend(invalid_each(
            path,
            k,
            names::is_qualified_name(&k.to_lowercase()),
        ));
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errors.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errors
}

fn validate_owner_references(refs: Option<&[OwnerReference]>, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut controllers = Vec::new();
    for r in refs.unwrap_or_default() {
        // An apiVersion of "group/" has an empty version, as does "".
        let version = r.api_version.rsplit('/').next().unwrap_or_default();
        if version.is_empty() {
            errors.push(FieldError::invalid(
                path.child("apiVersion"),
                &r.api_version,
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errors.push(FieldError::invalid(
                path.child("kind"),
                &r.kind,
                "kind must not be empty",
            ));
        }
        if r.name.is_empty() {
            errors.push(FieldError::invalid(
                path.child("name"),
                &r.name,
                "name must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errors.push(FieldError::invalid(
                path.child("uid"),
                &r.uid,
                "uid must not be empty",
            ));
        }
        if r.controller == Some(true) {
            controllers.push(format!("{}/{}", r.kind, r.name));
        }
    }
    if controllers.len() > 1 {
        errors.push(FieldError::invalid(
            path,
            "true",
            format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
    errors
}

/// `ValidateFinalizerName`: a qualified name, and fully qualified unless standard.
pub fn validate_finalizers(finalizers: Option<&[String]>, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for f in finalizers.unwrap_or_default() {
        let syntax = validate_label_key(f, path);
        if syntax.is_empty() && !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
            errors.push(FieldError::invalid(
                path,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
        errors.extend(syntax);
    }
    errors
}

/// What an update may not change in metadata. Fields the client left out
/// (uid, creationTimestamp) count as unchanged: the server carries them over
/// from the stored object, as Kubernetes' `BeforeUpdate` does.
pub fn validate_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let path = Path::new("metadata");
    let mut errors = Vec::new();
    let nonempty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);

    if nonempty(&new.name) != nonempty(&old.name) {
        errors.push(FieldError::immutable(path.child("name")));
    }
    if nonempty(&new.namespace) != nonempty(&old.namespace) {
        errors.push(FieldError::immutable(path.child("namespace")));
    }
    if nonempty(&new.uid).is_some() && nonempty(&new.uid) != nonempty(&old.uid) {
        errors.push(FieldError::immutable(path.child("uid")));
    }
    if new.creation_timestamp.is_some() && new.creation_timestamp != old.creation_timestamp {
        errors.push(FieldError::immutable(path.child("creationTimestamp")));
    }
    if new.deletion_timestamp.is_some() && new.deletion_timestamp != old.deletion_timestamp {
        errors.push(FieldError::invalid(
            path.child("deletionTimestamp"),
            "set",
            "field is immutable; may only be changed via deletion",
        ));
    }
    if let (Some(n), Some(o)) = (new.generation, old.generation)
        && n < o
    {
        errors.push(FieldError::invalid(
            path.child("generation"),
            n,
            "must not be decremented",
        ));
    }
    if old.deletion_timestamp.is_some() {
        let old_finalizers = old.finalizers.as_deref().unwrap_or_default();
        let added: Vec<&str> = new
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !old_finalizers.contains(f))
            .map(String::as_str)
            .collect();
        if !added.is_empty() {
            errors.push(FieldError::forbidden(
                path.child("finalizers"),
                format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: ns.map(Into::into),
            ..Default::default()
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn name_is_required() {
        let errs = validate_object_meta(
            &ObjectMeta {
                namespace: Some("default".into()),
                ..Default::default()
            },
            "Pod",
            true,
        );
        assert_eq!(fields(&errs), ["metadata.name"]);
        assert_eq!(
            errs[0].message,
            "Required value: name or generateName is required"
        );
    }

    #[test]
    fn name_rule_depends_on_kind() {
        assert!(validate_object_meta(&meta("a.b", Some("ns")), "ConfigMap", true).is_empty());
        assert_eq!(
            fields(&validate_object_meta(
                &meta("a.b", None),
                "Namespace",
                false
            )),
            ["metadata.name"]
        );
        assert_eq!(
            fields(&validate_object_meta(
                &meta("1web", Some("ns")),
                "Service",
                true
            )),
            ["metadata.name"]
        );
        assert!(
            validate_object_meta(&meta("system:controller:x", None), "ClusterRole", false)
                .is_empty()
        );
        assert_eq!(
            fields(&validate_object_meta(
                &meta("a/b", None),
                "ClusterRole",
                false
            )),
            ["metadata.name"]
        );
        assert_eq!(
            fields(&validate_object_meta(&meta("Web", Some("ns")), "Pod", true)),
            ["metadata.name"]
        );
    }

    #[test]
    fn namespace_presence_follows_scope() {
        assert_eq!(
            fields(&validate_object_meta(&meta("a", None), "Pod", true)),
            ["metadata.namespace"]
        );
        let errs = validate_object_meta(&meta("a", Some("ns")), "Node", false);
        assert_eq!(fields(&errs), ["metadata.namespace"]);
        assert_eq!(errs[0].reason, "FieldValueForbidden");
        assert_eq!(
            fields(&validate_object_meta(
                &meta("a", Some("Bad_NS")),
                "Pod",
                true
            )),
            ["metadata.namespace"]
        );
    }

    #[test]
    fn labels_and_annotations_are_checked() {
        let mut m = meta("a", Some("ns"));
        m.labels = Some([("app".to_string(), "x".repeat(64))].into());
        m.annotations = Some([("bad key".to_string(), String::new())].into());
        assert_eq!(
            fields(&validate_object_meta(&m, "Pod", true)),
            ["metadata.labels", "metadata.annotations"]
        );
    }

    #[test]
    fn annotations_total_size_is_limited() {
        let mut m = meta("a", Some("ns"));
        m.annotations = Some([("big".to_string(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT))].into());
        let errs = validate_object_meta(&m, "Pod", true);
        assert_eq!(fields(&errs), ["metadata.annotations"]);
        assert_eq!(errs[0].reason, "FieldValueTooLong");
    }

    #[test]
    fn owner_references_need_all_identifying_fields() {
        let mut m = meta("a", Some("ns"));
        m.owner_references = Some(vec![OwnerReference {
            api_version: "apps/".into(),
            ..Default::default()
        }]);
        assert_eq!(
            fields(&validate_object_meta(&m, "Pod", true)),
            [
                "metadata.ownerReferences.apiVersion",
                "metadata.ownerReferences.kind",
                "metadata.ownerReferences.name",
                "metadata.ownerReferences.uid"
            ]
        );
    }

    #[test]
    fn finalizers_must_be_standard_or_qualified() {
        let mut m = meta("a", Some("ns"));
        m.finalizers = Some(vec![
            "kubernetes".into(),
            "example.com/cleanup".into(),
            "mine".into(),
        ]);
        assert_eq!(
            fields(&validate_object_meta(&m, "Pod", true)),
            ["metadata.finalizers"]
        );
    }

    #[test]
    fn update_may_not_change_identity() {
        let mut old = meta("a", Some("ns"));
        old.uid = Some("u1".into());
        old.creation_timestamp = Some(Time(jiff_epoch()));
        let mut new = meta("b", Some("other"));
        new.uid = Some("u2".into());
        assert_eq!(
            fields(&validate_meta_update(&new, &old)),
            ["metadata.name", "metadata.namespace", "metadata.uid"]
        );
        // Leaving out uid and creationTimestamp is not a change.
        let same = meta("a", Some("ns"));
        assert!(validate_meta_update(&same, &old).is_empty());
    }

    #[test]
    fn no_finalizers_may_be_added_while_deleting() {
        let mut old = meta("a", Some("ns"));
        old.deletion_timestamp = Some(Time(jiff_epoch()));
        let mut new = old.clone();
        new.finalizers = Some(vec!["example.com/x".into()]);
        assert_eq!(
            fields(&validate_meta_update(&new, &old)),
            ["metadata.finalizers"]
        );
    }

    fn jiff_epoch() -> k8s_openapi::jiff::Timestamp {
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH
    }
}
