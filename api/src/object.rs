//! The contract every served kind's Rust type fulfils (`ApiObject`), and
//! `admit`: decode, default, validate, encode, in that order, in one place.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::FieldError;

/// A served kind: an upstream Kubernetes type plus wasmpod's defaulting and
/// validation for it. Implementations live in `defaults` and `validation`.
pub trait ApiObject:
    k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Serialize
    + DeserializeOwned
    + schemars::JsonSchema
    + 'static
{
    /// Fills unset fields with the values Kubernetes defaults them to.
    fn apply_defaults(&mut self);
    /// Field errors of this object; `old` is the stored object on update.
    /// Metadata rules common to all kinds are checked by `admit`.
    fn validate(&self, old: Option<&Self>) -> Vec<FieldError>;
}

/// Why an object was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// The body does not decode as the kind (wrong types, bad base64, ...): 400.
    #[error("{0}")]
    Decode(String),
    /// Decoded but invalid: 422 with these causes.
    #[error("invalid object")]
    Invalid(Vec<FieldError>),
}

/// Decodes `new` as `T`, defaults it, validates it (against `old` on
/// update) and encodes it back to JSON.
pub fn admit<T: ApiObject>(new: Value, old: Option<&Value>) -> Result<Value, AdmitError> {
    let mut object: T = decode(new)?;
    object.apply_defaults();
    let old: Option<T> = match old {
        Some(v) => Some(decode(v.clone())?),
        None => None,
    };
    let namespaced = std::any::TypeId::of::<T::Scope>()
        == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>();
    let mut errors =
        crate::validation::meta::validate_object_meta(object.metadata(), T::KIND, namespaced);
    if let Some(old) = &old {
        errors.extend(crate::validation::meta::validate_meta_update(
            object.metadata(),
            old.metadata(),
        ));
    }
    errors.extend(object.validate(old.as_ref()));
    if !errors.is_empty() {
        return Err(AdmitError::Invalid(errors));
    }
    serde_json::to_value(&object).map_err(|e| AdmitError::Decode(e.to_string()))
}

/// Decodes a JSON value as `T`, naming the path of the first bad field.
pub fn decode<T: ApiObject>(value: Value) -> Result<T, AdmitError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let detail = if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        };
        AdmitError::Decode(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {detail}",
            kind = T::KIND,
            version = T::VERSION
        ))
    })
}

/// Binds each served kind to its defaulting and validation functions.
macro_rules! api_objects {
    ($($ty:ty => $fn:ident),* $(,)?) => {$(
        impl ApiObject for $ty {
            fn apply_defaults(&mut self) {
                crate::defaults::$fn(self)
            }
            fn validate(&self, old: Option<&Self>) -> Vec<FieldError> {
                crate::validation::$fn(self, old)
            }
        }
    )*};
}

use k8s_openapi::api::{
    apps::v1 as apps, batch::v1 as batch, coordination::v1 as coordination, core::v1 as core,
    rbac::v1 as rbac, storage::v1 as storage,
};

api_objects! {
    core::Namespace => namespace,
    core::Node => node,
    core::Pod => pod,
    core::Service => service,
    core::Endpoints => endpoints,
    core::ConfigMap => config_map,
    core::Secret => secret,
    core::ServiceAccount => service_account,
    core::PersistentVolume => persistent_volume,
    core::PersistentVolumeClaim => persistent_volume_claim,
    core::ReplicationController => replication_controller,
    core::Event => event,
    apps::Deployment => deployment,
    apps::ReplicaSet => replica_set,
    apps::StatefulSet => stateful_set,
    apps::DaemonSet => daemon_set,
    apps::ControllerRevision => controller_revision,
    batch::Job => job,
    batch::CronJob => cron_job,
    coordination::Lease => lease,
    rbac::Role => role,
    rbac::RoleBinding => role_binding,
    rbac::ClusterRole => cluster_role,
    rbac::ClusterRoleBinding => cluster_role_binding,
    storage::StorageClass => storage_class,
}
