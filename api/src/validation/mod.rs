//! Validation: the field rules Kubernetes enforces, per kind.
pub mod meta;
use crate::error::FieldError;
use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, coordination::v1 as coordination, core::v1 as core, rbac::v1 as rbac};
pub fn namespace(_obj: &core::Namespace, _old: Option<&core::Namespace>) -> Vec<FieldError> { Vec::new() }
pub fn node(_obj: &core::Node, _old: Option<&core::Node>) -> Vec<FieldError> { Vec::new() }
pub fn pod(_obj: &core::Pod, _old: Option<&core::Pod>) -> Vec<FieldError> { Vec::new() }
pub fn service(_obj: &core::Service, _old: Option<&core::Service>) -> Vec<FieldError> { Vec::new() }
pub fn endpoints(_obj: &core::Endpoints, _old: Option<&core::Endpoints>) -> Vec<FieldError> { Vec::new() }
pub fn config_map(_obj: &core::ConfigMap, _old: Option<&core::ConfigMap>) -> Vec<FieldError> { Vec::new() }
pub fn secret(_obj: &core::Secret, _old: Option<&core::Secret>) -> Vec<FieldError> { Vec::new() }
pub fn service_account(_obj: &core::ServiceAccount, _old: Option<&core::ServiceAccount>) -> Vec<FieldError> { Vec::new() }
pub fn persistent_volume(_obj: &core::PersistentVolume, _old: Option<&core::PersistentVolume>) -> Vec<FieldError> { Vec::new() }
pub fn persistent_volume_claim(_obj: &core::PersistentVolumeClaim, _old: Option<&core::PersistentVolumeClaim>) -> Vec<FieldError> { Vec::new() }
pub fn replication_controller(_obj: &core::ReplicationController, _old: Option<&core::ReplicationController>) -> Vec<FieldError> { Vec::new() }
pub fn event(_obj: &core::Event, _old: Option<&core::Event>) -> Vec<FieldError> { Vec::new() }
pub fn deployment(_obj: &apps::Deployment, _old: Option<&apps::Deployment>) -> Vec<FieldError> { Vec::new() }
pub fn replica_set(_obj: &apps::ReplicaSet, _old: Option<&apps::ReplicaSet>) -> Vec<FieldError> { Vec::new() }
pub fn stateful_set(_obj: &apps::StatefulSet, _old: Option<&apps::StatefulSet>) -> Vec<FieldError> { Vec::new() }
pub fn daemon_set(_obj: &apps::DaemonSet, _old: Option<&apps::DaemonSet>) -> Vec<FieldError> { Vec::new() }
pub fn controller_revision(_obj: &apps::ControllerRevision, _old: Option<&apps::ControllerRevision>) -> Vec<FieldError> { Vec::new() }
pub fn job(_obj: &batch::Job, _old: Option<&batch::Job>) -> Vec<FieldError> { Vec::new() }
pub fn cron_job(_obj: &batch::CronJob, _old: Option<&batch::CronJob>) -> Vec<FieldError> { Vec::new() }
pub fn lease(_obj: &coordination::Lease, _old: Option<&coordination::Lease>) -> Vec<FieldError> { Vec::new() }
pub fn role(_obj: &rbac::Role, _old: Option<&rbac::Role>) -> Vec<FieldError> { Vec::new() }
pub fn role_binding(_obj: &rbac::RoleBinding, _old: Option<&rbac::RoleBinding>) -> Vec<FieldError> { Vec::new() }
pub fn cluster_role(_obj: &rbac::ClusterRole, _old: Option<&rbac::ClusterRole>) -> Vec<FieldError> { Vec::new() }
pub fn cluster_role_binding(_obj: &rbac::ClusterRoleBinding, _old: Option<&rbac::ClusterRoleBinding>) -> Vec<FieldError> { Vec::new() }
