//! Defaulting: the values Kubernetes fills in for unset fields.
use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, coordination::v1 as coordination, core::v1 as core, rbac::v1 as rbac};
pub fn namespace(_obj: &mut core::Namespace) {}
pub fn node(_obj: &mut core::Node) {}
pub fn pod(_obj: &mut core::Pod) {}
pub fn service(_obj: &mut core::Service) {}
pub fn endpoints(_obj: &mut core::Endpoints) {}
pub fn config_map(_obj: &mut core::ConfigMap) {}
pub fn secret(_obj: &mut core::Secret) {}
pub fn service_account(_obj: &mut core::ServiceAccount) {}
pub fn persistent_volume(_obj: &mut core::PersistentVolume) {}
pub fn persistent_volume_claim(_obj: &mut core::PersistentVolumeClaim) {}
pub fn replication_controller(_obj: &mut core::ReplicationController) {}
pub fn event(_obj: &mut core::Event) {}
pub fn deployment(_obj: &mut apps::Deployment) {}
pub fn replica_set(_obj: &mut apps::ReplicaSet) {}
pub fn stateful_set(_obj: &mut apps::StatefulSet) {}
pub fn daemon_set(_obj: &mut apps::DaemonSet) {}
pub fn controller_revision(_obj: &mut apps::ControllerRevision) {}
pub fn job(_obj: &mut batch::Job) {}
pub fn cron_job(_obj: &mut batch::CronJob) {}
pub fn lease(_obj: &mut coordination::Lease) {}
pub fn role(_obj: &mut rbac::Role) {}
pub fn role_binding(_obj: &mut rbac::RoleBinding) {}
pub fn cluster_role(_obj: &mut rbac::ClusterRole) {}
pub fn cluster_role_binding(_obj: &mut rbac::ClusterRoleBinding) {}
