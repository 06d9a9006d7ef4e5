//! The key controllers work on: an object's namespace and name.

use std::fmt;

use k8s_openapi::Metadata;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Names one object of a kind: `namespace/name`, or `name` for cluster
/// scoped kinds. Work queues hold these, never whole objects, so a
/// reconciler always reads the newest copy from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The key of `obj`; `None` for an object without a name.
    pub fn from_obj<K: Metadata<Ty = ObjectMeta>>(obj: &K) -> Option<Self> {
        let meta = obj.metadata();
        Some(Self {
            namespace: meta.namespace.clone().filter(|ns| !ns.is_empty()),
            name: meta.name.clone()?,
        })
    }

    /// The key of the object that controls `obj` (its ownerReference with
    /// `controller: true`) when that owner is of `kind`, in `obj`'s
    /// namespace: how a ReplicaSet controller maps a pod to its ReplicaSet.
    pub fn controller_of<K: Metadata<Ty = ObjectMeta>>(obj: &K, kind: &str) -> Option<Self> {
        let meta = obj.metadata();
        let owner = meta
            .owner_references
            .as_ref()?
            .iter()
            .find(|o| o.controller == Some(true))?;
        (owner.kind == kind).then(|| Self {
            namespace: meta.namespace.clone().filter(|ns| !ns.is_empty()),
            name: owner.name.clone(),
        })
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    #[test]
    fn keys_print_as_namespace_slash_name() {
        assert_eq!(ObjectRef::new(Some("ns"), "p").to_string(), "ns/p");
        assert_eq!(ObjectRef::new(None, "n1").to_string(), "n1");
    }

    #[test]
    fn the_controlling_owner_of_the_right_kind_is_the_key() {
        let owner = |kind: &str, controller| OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: "web".into(),
            uid: "u1".into(),
            controller: Some(controller),
            block_owner_deletion: None,
        };
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("ns".into());
        pod.metadata.owner_references = Some(vec![owner("ReplicaSet", true)]);
        assert_eq!(
            ObjectRef::controller_of(&pod, "ReplicaSet"),
            Some(ObjectRef::new(Some("ns"), "web"))
        );
        assert_eq!(ObjectRef::controller_of(&pod, "Job"), None);
        pod.metadata.owner_references = Some(vec![owner("ReplicaSet", false)]);
        assert_eq!(ObjectRef::controller_of(&pod, "ReplicaSet"), None);
    }
}
