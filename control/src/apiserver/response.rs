//! Response rendering: `Status` errors, JSON objects, and the Accept-header
//! negotiation between plain objects, `Table` and `PartialObjectMetadata`.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;
use wasmpod_api::ApiError;

use crate::store::StoreError;

/// An `ApiError` on its way out as a `Status` response.
#[derive(Debug)]
pub struct ErrorResponse(pub ApiError);

impl From<ApiError> for ErrorResponse {
    fn from(e: ApiError) -> Self {
        ErrorResponse(e)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if code.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
        }
        json_response(code, &self.0.to_status())
    }
}

pub fn json_response(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes_response(code, bytes)
}

pub fn bytes_response(code: StatusCode, bytes: impl Into<axum::body::Body>) -> Response {
    let mut resp = (code, bytes.into()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Maps a store failure on `resource`/`name` to the API error clients expect.
pub fn store_error(group: &str, resource: &str, err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound(k) => ApiError::not_found(group, resource, &k.name),
        StoreError::AlreadyExists(k) => ApiError::already_exists(group, resource, &k.name),
        StoreError::Conflict { key, .. } => ApiError::conflict(
            group,
            resource,
            &key.name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ),
        StoreError::Expired { requested, oldest } => {
            ApiError::Expired(format!("too old resource version: {requested} ({oldest})"))
        }
        other => {
            let mut msg = other.to_string();
            let mut source = std::error::Error::source(&other);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            ApiError::Internal(msg)
        }
    }
}

/// What representation the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Object,
    Table,
    PartialObjectMetadata,
}

/// Picks the first representation of `Accept` that the server can produce.
/// Protobuf is not served; a client that accepts only protobuf gets 406.
pub fn negotiate(headers: &HeaderMap) -> Result<Representation, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Representation::Object);
    };
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        if !matches!(
            media,
            "application/json" | "*/*" | "application/*" | "application/yaml"
        ) {
            continue;
        }
        match (param("as"), param("g"), param("v")) {
            (None, _, _) => return Ok(Representation::Object),
            (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                return Ok(Representation::Table);
            }
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some("v1"),
            ) => {
                return Ok(Representation::PartialObjectMetadata);
            }
            _ => continue,
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "only application/json (optionally as=Table or as=PartialObjectMetadata in meta.k8s.io/v1) is served, not {accept:?}"
    )))
}

/// The `PartialObjectMetadata` form of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    serde_json::json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(Value::Null),
    })
}

/// Adds `Warning` headers (299 code) as kube-apiserver does.
pub fn add_warnings(resp: &mut Response, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("warning", v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn kubectl_get_asks_for_tables() {
        let h = accept(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        );
        assert_eq!(negotiate(&h).expect("negotiates"), Representation::Table);
    }

    #[test]
    fn protobuf_falls_back_to_json() {
        let h = accept("application/vnd.kubernetes.protobuf,application/json");
        assert_eq!(negotiate(&h).expect("negotiates"), Representation::Object);
        assert!(negotiate(&accept("application/vnd.kubernetes.protobuf")).is_err());
    }
}
