//! Request bodies in Kubernetes protobuf (`application/vnd.kubernetes.protobuf`),
//! which client-go's typed clients send and do not retry as JSON, decoded
//! into the JSON objects the API server works with. Responses stay JSON:
//! client-go decodes a response by its own Content-Type.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` whose
//! `typeMeta` names the kind and whose `raw` holds the encoded object. Each
//! supported kind has a conversion that destructures every field of every
//! message it meets, so a field the conversion cannot express is refused by
//! name (415) rather than dropped.

mod container;
mod convert;
mod core_kinds;
mod meta;
mod pod;
mod rbac;
mod security;
mod volume;
mod workloads;

use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::Value;
use wasmpod_api::ApiError;
use wasmpod_api::registry::ResourceType;

use convert::{Conv, FieldError, Problem};

/// The media type of a Kubernetes protobuf body.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes before every Kubernetes protobuf message.
const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be turned into an object.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the request body is not a Kubernetes protobuf message: {0}")]
    NotEnvelope(String),
    #[error(
        "the API version in the data ({found}) does not match the expected API version ({expected})"
    )]
    ApiVersionMismatch { found: String, expected: String },
    #[error("the kind in the data ({found}) does not match the expected kind ({expected})")]
    KindMismatch { found: String, expected: String },
    #[error(
        "the protobuf object is wrapped as {0}; only plain Kubernetes protobuf ({MEDIA_TYPE}) is accepted"
    )]
    Wrapping(String),
    #[error(
        "protobuf request bodies are accepted only for {}; send this {kind} as JSON instead (for example with `kubectl apply -f` or `kubectl create -f`)",
        supported_kinds()
    )]
    UnsupportedKind { kind: String },
    #[error("the protobuf {kind} in the request body is malformed: {source}")]
    Malformed {
        kind: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error(
        "field {path} of a protobuf {kind} is not supported; send this {kind} as JSON instead (for example with `kubectl apply -f` or `kubectl create -f`)"
    )]
    UnsupportedField { kind: String, path: String },
    #[error("field {path} of the protobuf {kind} is invalid: {reason}")]
    InvalidField {
        kind: String,
        path: String,
        reason: String,
    },
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Wrapping(_)
            | DecodeError::UnsupportedKind { .. }
            | DecodeError::UnsupportedField { .. } => ApiError::UnsupportedMediaType(e.to_string()),
            DecodeError::NotEnvelope(_)
            | DecodeError::ApiVersionMismatch { .. }
            | DecodeError::KindMismatch { .. }
            | DecodeError::Malformed { .. }
            | DecodeError::InvalidField { .. } => ApiError::BadRequest(e.to_string()),
        }
    }
}

/// One kind this module decodes.
struct Kind {
    api_version: &'static str,
    kind: &'static str,
    convert: fn(&[u8]) -> Result<Value, DecodeError>,
}

/// The kinds kubectl's generators (`kubectl create <kind>`) send as
/// protobuf, and Pod, which other typed clients create.
const KINDS: &[Kind] = &[
    Kind {
        api_version: "v1",
        kind: "Namespace",
        convert: |b| run(b, "Namespace", core_kinds::namespace),
    },
    Kind {
        api_version: "v1",
        kind: "ConfigMap",
        convert: |b| run(b, "ConfigMap", core_kinds::config_map),
    },
    Kind {
        api_version: "v1",
        kind: "Secret",
        convert: |b| run(b, "Secret", core_kinds::secret),
    },
    Kind {
        api_version: "v1",
        kind: "ServiceAccount",
        convert: |b| run(b, "ServiceAccount", core_kinds::service_account),
    },
    Kind {
        api_version: "v1",
        kind: "Service",
        convert: |b| run(b, "Service", core_kinds::service),
    },
    Kind {
        api_version: "v1",
        kind: "Pod",
        convert: |b| run(b, "Pod", pod::pod),
    },
    Kind {
        api_version: "apps/v1",
        kind: "Deployment",
        convert: |b| run(b, "Deployment", workloads::deployment),
    },
    Kind {
        api_version: "batch/v1",
        kind: "Job",
        convert: |b| run(b, "Job", workloads::job),
    },
    Kind {
        api_version: "batch/v1",
        kind: "CronJob",
        convert: |b| run(b, "CronJob", workloads::cron_job),
    },
    Kind {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        convert: |b| run(b, "Role", rbac::role),
    },
    Kind {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        convert: |b| run(b, "ClusterRole", rbac::cluster_role),
    },
    Kind {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        convert: |b| run(b, "RoleBinding", rbac::role_binding),
    },
    Kind {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        convert: |b| run(b, "ClusterRoleBinding", rbac::cluster_role_binding),
    },
];

fn supported_kinds() -> String {
    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
}

/// Decodes a protobuf message and converts it, naming the kind in errors.
fn run<M: Message + Default>(
    raw: &[u8],
    kind: &str,
    convert: fn(M) -> Conv,
) -> Result<Value, DecodeError> {
    let message = M::decode(raw).map_err(|source| DecodeError::Malformed {
        kind: kind.to_string(),
        source,
    })?;
    convert(message).map_err(|FieldError { path, problem }| match problem {
        Problem::Unsupported => DecodeError::UnsupportedField {
            kind: kind.to_string(),
            path,
        },
        Problem::Invalid(reason) => DecodeError::InvalidField {
            kind: kind.to_string(),
            path,
            reason,
        },
    })
}

/// Decodes a Kubernetes protobuf request body (magic `k8s\0` and a
/// `runtime.Unknown` envelope) into the JSON object the API server works
/// with: camelCase fields as in the Kubernetes JSON encoding, unset and
/// empty optional fields omitted, `apiVersion` and `kind` from the
/// envelope's `typeMeta`.
pub fn decode(body: &[u8], expect: &ResourceType) -> Result<Value, ApiError> {
    decode_object(body, expect).map_err(ApiError::from)
}

fn decode_object(body: &[u8], expect: &ResourceType) -> Result<Value, DecodeError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        DecodeError::NotEnvelope("it does not start with the magic bytes \"k8s\\0\"".into())
    })?;
    let Unknown {
        type_meta,
        raw,
        content_encoding,
        content_type,
    } = Unknown::decode(envelope).map_err(|e| {
        DecodeError::NotEnvelope(format!("the runtime.Unknown envelope is malformed: {e}"))
    })?;
    let TypeMeta { api_version, kind } = type_meta.unwrap_or_default();
    // As with JSON, a missing apiVersion or kind is taken from the URL.
    let expected_version = expect.api_version();
    let api_version = api_version
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| expected_version.clone());
    let kind = kind
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| expect.kind.to_string());
    if api_version != expected_version {
        return Err(DecodeError::ApiVersionMismatch {
            found: api_version,
            expected: expected_version,
        });
    }
    if kind != expect.kind {
        return Err(DecodeError::KindMismatch {
            found: kind,
            expected: expect.kind.to_string(),
        });
    }
    if let Some(encoding) = content_encoding.filter(|e| !e.is_empty()) {
        return Err(DecodeError::Wrapping(format!(
            "content encoding {encoding:?}"
        )));
    }
    if let Some(media) = content_type.filter(|t| !t.is_empty() && t != MEDIA_TYPE) {
        return Err(DecodeError::Wrapping(format!("content type {media:?}")));
    }
    let entry = KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
        .ok_or_else(|| DecodeError::UnsupportedKind { kind: kind.clone() })?;
    let mut object = (entry.convert)(raw.as_deref().unwrap_or_default())?;
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), Value::String(api_version));
        map.insert("kind".into(), Value::String(kind));
    }
    Ok(object)
}

#[cfg(test)]
mod tests;
