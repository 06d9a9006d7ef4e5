//! Request bodies: size limit, content type, JSON or YAML decoding, and the
//! strict field checks of `fieldValidation`.

use axum::body::{Body, to_bytes};
use bytes::Bytes;
use http::{HeaderMap, header};
use serde_json::Value;
use wasmpod_api::ApiError;
use wasmpod_api::registry::ResourceType;

use super::request::FieldValidation;

/// kube-apiserver's request body limit.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How a body is encoded, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    MergePatch,
    StrategicMergePatch,
    JsonPatch,
    ApplyPatch,
    /// Kubernetes protobuf, which client-go's typed clients send.
    Protobuf,
}

pub fn content_type(headers: &HeaderMap) -> Result<BodyType, ApiError> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = raw.split(';').next().unwrap_or("").trim();
    Ok(match media {
        "application/json" | "" => BodyType::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" => BodyType::Yaml,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/apply-patch+yaml" => BodyType::ApplyPatch,
        super::protobuf::MEDIA_TYPE => BodyType::Protobuf,
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
            )));
        }
    })
}

/// Reads the whole body, refusing more than `MAX_BODY_BYTES`.
pub async fn read(body: Body) -> Result<Bytes, ApiError> {
    to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::RequestEntityTooLarge(format!(
                "the request body is larger than the limit of {MAX_BODY_BYTES} bytes"
            ))
        } else {
            ApiError::BadRequest(format!("reading the request body: {e}"))
        }
    })
}

/// Decodes a JSON or YAML document into a JSON value.
pub fn decode(bytes: &[u8], yaml: bool) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    if yaml {
        let v: serde_yaml::Value = serde_yaml::from_slice(bytes).map_err(|e| {
            ApiError::BadRequest(format!("the request body is not valid YAML: {e}"))
        })?;
        serde_json::to_value(v)
            .map_err(|e| ApiError::BadRequest(format!("the YAML body has no JSON form: {e}")))
    } else {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
    }
}

/// Applies `fieldValidation` to a decoded object: with Strict, unknown or
/// duplicate fields fail the request with 400; with Warn they come back as
/// warnings; with Ignore nothing is checked.
pub fn check_fields(
    resource: &ResourceType,
    raw: Option<(&[u8], bool)>,
    object: &Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if mode == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let unknown = resource.ops.unknown_fields(object);
    let duplicate = match raw {
        Some((bytes, yaml)) => {
            wasmpod_api::strict::duplicate_fields(bytes, yaml).map_err(ApiError::BadRequest)?
        }
        None => Vec::new(),
    };
    if unknown.is_empty() && duplicate.is_empty() {
        return Ok(Vec::new());
    }
    match mode {
        FieldValidation::Strict => Err(ApiError::BadRequest(
            wasmpod_api::strict::strict_error_message(&unknown, &duplicate),
        )),
        _ => Ok(unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .chain(duplicate.iter().map(|f| format!("duplicate field \"{f}\"")))
            .collect()),
    }
}
