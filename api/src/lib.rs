//! The wasmpod API: the Kubernetes kinds wasmpod serves and everything about
//! them that needs no server: the kind registry, defaulting, validation,
//! label and field selectors, patches, strict decoding and the `Status`
//! error shape.
//!
//! Resource types are the upstream Kubernetes types of `k8s-openapi`
//! (API level v1.32), so manifests written for Kubernetes decode unchanged.

#[cfg(feature = "client")]
pub mod client;
pub mod defaults;
pub mod error;
pub mod meta;
pub mod module_ref;
pub mod object;
pub mod patch;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod strict;
pub mod validation;

pub use error::{ApiError, FieldError};
pub use k8s_openapi;
pub use registry::{ResourceType, Subresource};

/// The Kubernetes API level this version of wasmpod implements.
pub const KUBERNETES_MINOR: &str = "32";
