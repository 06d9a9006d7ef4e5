//! Defaulting: the values Kubernetes fills in for unset fields, one
//! function per served kind (bound to the kinds in `object.rs`).
//!
//! Besides the API's own `SetDefaults_*` functions this includes what the
//! Kubernetes API server's registries and default admission plugins add to
//! a new object (a Pod's service account, priority and initial status, a
//! Job's generated selector, a Namespace's finalizer), so a stored object
//! looks as it would on a Kubernetes cluster.

mod batch;
mod core;
mod pod;
mod rbac;
mod workloads;

use k8s_openapi::api::{
    apps::v1 as apps, coordination::v1 as coordination, core::v1 as core_v1, rbac::v1 as rbac_v1,
};

pub use self::batch::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
    cron_job, job,
};
pub use self::core::{
    NAMESPACE_NAME_LABEL, endpoints, namespace, node, persistent_volume, persistent_volume_claim,
    secret, service,
};
pub use self::pod::{image_pull_policy, pod, pod_template, qos_class};
pub use self::rbac::{cluster_role_binding, role_binding};
pub use self::workloads::{
    daemon_set, deployment, replica_set, replication_controller, stateful_set,
};

// Kinds for which Kubernetes defines no defaults.

pub fn config_map(_obj: &mut core_v1::ConfigMap) {}

pub fn service_account(_obj: &mut core_v1::ServiceAccount) {}

pub fn event(_obj: &mut core_v1::Event) {}

pub fn controller_revision(_obj: &mut apps::ControllerRevision) {}

pub fn lease(_obj: &mut coordination::Lease) {}

pub fn role(_obj: &mut rbac_v1::Role) {}

pub fn cluster_role(_obj: &mut rbac_v1::ClusterRole) {}

/// `SetDefaults_StorageClass`: volumes are deleted with their claims and
/// bound as soon as a claim exists, unless the class says otherwise.
pub fn storage_class(obj: &mut k8s_openapi::api::storage::v1::StorageClass) {
    obj.reclaim_policy.get_or_insert_with(|| "Delete".into());
    obj.volume_binding_mode
        .get_or_insert_with(|| "Immediate".into());
}
