//! The registry of served kinds: for each resource its group, version,
//! kind, plural and short names, scope, subresources, and the typed
//! operations (decode, default, validate, schema) bound to its Rust type.
//!
//! Everything that must list "all kinds" (discovery, OpenAPI, routing,
//! the store's key space) reads this one table.

use std::marker::PhantomData;

use k8s_openapi::api::{apps, batch, coordination, core, rbac, storage};
use serde_json::Value;

use crate::object::{AdmitError, ApiObject};

/// A subresource served under `/{resource}/{name}/{subresource}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `status`: writes change only `.status`; the main resource ignores `.status`.
    Status,
    /// `scale`: an `autoscaling/v1 Scale` view of `.spec.replicas`.
    Scale,
    /// `binding` (pods): assigns the pod to a node.
    Binding,
    /// `finalize` (namespaces): writes `.spec.finalizers`.
    Finalize,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Finalize => "finalize",
        }
    }
}

/// Typed operations of one kind, behind a trait object so the table can be static.
pub trait KindOps: Send + Sync {
    /// Decodes `new` into the kind's Rust type, fills defaults, validates it
    /// (against `old` on update) and encodes it back. Unknown fields are
    /// dropped by the round trip; reporting them is `strict`'s job.
    fn admit(&self, new: Value, old: Option<&Value>) -> Result<Value, AdmitError>;
    /// Adds the kind's schema (and every type it references) to `generator`.
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema;
    /// The schema's component name, e.g. `io.k8s.api.core.v1.Pod`.
    fn schema_name(&self) -> String;
    /// Names of every field path in `value` that the kind's type does not know.
    fn unknown_fields(&self, value: &Value) -> Vec<String>;
}

struct Typed<T>(PhantomData<fn() -> T>);

impl<T: ApiObject> KindOps for Typed<T> {
    fn admit(&self, new: Value, old: Option<&Value>) -> Result<Value, AdmitError> {
        crate::object::admit::<T>(new, old)
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<T>()
    }
    fn schema_name(&self) -> String {
        <T as schemars::JsonSchema>::schema_name().into_owned()
    }
    fn unknown_fields(&self, value: &Value) -> Vec<String> {
        crate::strict::unknown_fields::<T>(value)
    }
}

/// One served resource.
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The URL segment, e.g. `pods`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    pub ops: &'static dyn KindOps,
}

impl std::fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.key())
    }
}

impl ResourceType {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// The store key space: `pods`, `deployments.apps`.
    pub fn key(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }
    /// Kinds whose `.spec` changes bump `metadata.generation`.
    pub fn has_spec(&self) -> bool {
        !matches!(
            self.kind,
            "ConfigMap"
                | "Secret"
                | "ServiceAccount"
                | "Endpoints"
                | "Event"
                | "ControllerRevision"
                | "Role"
                | "RoleBinding"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "StorageClass"
        )
    }
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];
const STATUS: &[Subresource] = &[Subresource::Status];
const STATUS_SCALE: &[Subresource] = &[Subresource::Status, Subresource::Scale];

macro_rules! resource {
    ($ty:ty, $group:literal, $kind:literal, $plural:literal, $singular:literal, namespaced: $ns:literal,
     short: $short:expr, categories: $cat:expr, sub: $sub:expr) => {
        ResourceType {
            group: $group,
            version: "v1",
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            subresources: $sub,
            ops: &Typed::<$ty>(PhantomData),
        }
    };
}

/// Every served resource, in discovery order.
pub static RESOURCES: &[ResourceType] = &[
    resource!(core::v1::Namespace, "", "Namespace", "namespaces", "namespace", namespaced: false,
        short: &["ns"], categories: NONE, sub: &[Subresource::Status, Subresource::Finalize]),
    resource!(core::v1::Node, "", "Node", "nodes", "node", namespaced: false,
        short: &["no"], categories: NONE, sub: STATUS),
    resource!(core::v1::Pod, "", "Pod", "pods", "pod", namespaced: true,
        short: &["po"], categories: ALL, sub: &[Subresource::Status, Subresource::Binding]),
    resource!(core::v1::Service, "", "Service", "services", "service", namespaced: true,
        short: &["svc"], categories: ALL, sub: STATUS),
    resource!(core::v1::Endpoints, "", "Endpoints", "endpoints", "endpoints", namespaced: true,
        short: &["ep"], categories: NONE, sub: &[]),
    resource!(core::v1::ConfigMap, "", "ConfigMap", "configmaps", "configmap", namespaced: true,
        short: &["cm"], categories: NONE, sub: &[]),
    resource!(core::v1::Secret, "", "Secret", "secrets", "secret", namespaced: true,
        short: NONE, categories: NONE, sub: &[]),
    resource!(core::v1::ServiceAccount, "", "ServiceAccount", "serviceaccounts", "serviceaccount", namespaced: true,
        short: &["sa"], categories: NONE, sub: &[]),
    resource!(core::v1::PersistentVolume, "", "PersistentVolume", "persistentvolumes", "persistentvolume", namespaced: false,
        short: &["pv"], categories: NONE, sub: STATUS),
    resource!(core::v1::PersistentVolumeClaim, "", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", namespaced: true,
        short: &["pvc"], categories: NONE, sub: STATUS),
    resource!(core::v1::ReplicationController, "", "ReplicationController", "replicationcontrollers", "replicationcontroller", namespaced: true,
        short: &["rc"], categories: ALL, sub: STATUS_SCALE),
    resource!(core::v1::Event, "", "Event", "events", "event", namespaced: true,
        short: &["ev"], categories: NONE, sub: &[]),
    resource!(apps::v1::Deployment, "apps", "Deployment", "deployments", "deployment", namespaced: true,
        short: &["deploy"], categories: ALL, sub: STATUS_SCALE),
    resource!(apps::v1::ReplicaSet, "apps", "ReplicaSet", "replicasets", "replicaset", namespaced: true,
        short: &["rs"], categories: ALL, sub: STATUS_SCALE),
    resource!(apps::v1::StatefulSet, "apps", "StatefulSet", "statefulsets", "statefulset", namespaced: true,
        short: &["sts"], categories: ALL, sub: STATUS_SCALE),
    resource!(apps::v1::DaemonSet, "apps", "DaemonSet", "daemonsets", "daemonset", namespaced: true,
        short: &["ds"], categories: ALL, sub: STATUS),
    resource!(apps::v1::ControllerRevision, "apps", "ControllerRevision", "controllerrevisions", "controllerrevision", namespaced: true,
        short: NONE, categories: NONE, sub: &[]),
    resource!(batch::v1::Job, "batch", "Job", "jobs", "job", namespaced: true,
        short: NONE, categories: ALL, sub: STATUS),
    resource!(batch::v1::CronJob, "batch", "CronJob", "cronjobs", "cronjob", namespaced: true,
        short: &["cj"], categories: ALL, sub: STATUS),
    resource!(coordination::v1::Lease, "coordination.k8s.io", "Lease", "leases", "lease", namespaced: true,
        short: NONE, categories: NONE, sub: &[]),
    resource!(rbac::v1::Role, "rbac.authorization.k8s.io", "Role", "roles", "role", namespaced: true,
        short: NONE, categories: NONE, sub: &[]),
    resource!(rbac::v1::RoleBinding, "rbac.authorization.k8s.io", "RoleBinding", "rolebindings", "rolebinding", namespaced: true,
        short: NONE, categories: NONE, sub: &[]),
    resource!(rbac::v1::ClusterRole, "rbac.authorization.k8s.io", "ClusterRole", "clusterroles", "clusterrole", namespaced: false,
        short: NONE, categories: NONE, sub: &[]),
    resource!(rbac::v1::ClusterRoleBinding, "rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", namespaced: false,
        short: NONE, categories: NONE, sub: &[]),
    resource!(storage::v1::StorageClass, "storage.k8s.io", "StorageClass", "storageclasses", "storageclass", namespaced: false,
        short: &["sc"], categories: NONE, sub: &[]),
];

/// The groups served, in discovery order, each with its one version.
pub const GROUPS: &[&str] = &[
    "apps",
    "batch",
    "coordination.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
];

/// Finds a resource by group, version and plural.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by apiVersion (`v1`, `apps/v1`) and kind.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The resources of one group-version.
pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceType> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// `apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_are_unique_per_group() {
        let mut seen = std::collections::HashSet::new();
        for r in RESOURCES {
            assert!(seen.insert(r.key()), "duplicate {}", r.key());
        }
    }

    #[test]
    fn every_group_is_listed() {
        for r in RESOURCES {
            assert!(
                r.group.is_empty() || GROUPS.contains(&r.group),
                "{} not in GROUPS",
                r.group
            );
        }
    }

    #[test]
    fn lookups_find_kinds() {
        assert_eq!(
            by_kind("apps/v1", "Deployment").map(|r| r.plural),
            Some("deployments")
        );
        assert_eq!(by_plural("", "v1", "pods").map(|r| r.kind), Some("Pod"));
        assert!(by_kind("apps/v1", "Pod").is_none());
    }
}
