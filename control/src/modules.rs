//! The built-in module store's HTTP API: `wasmpod push` uploads a wasm
//! module here and nodes fetch it back by digest, so a container's `image`
//! can name a pushed module (`app:v1`, `sha256:<hex>`) instead of a file
//! on the node.
//!
//! - `POST /wasmpod/v1/modules[?tag=NAME[:TAG]]`: the raw module; answers
//!   201 (new) or 200 (already stored) with its digest, size and reference.
//! - `GET|HEAD /wasmpod/v1/modules/sha256:<hex>`: the module's bytes.
//! - `GET /wasmpod/v1/tags[/NAME:TAG]`: one tag's digest, or every tag.
//!
//! Errors are Kubernetes `Status` objects like every other API error.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use wasmpod_api::ApiError;
use wasmpod_api::error::Target;
use wasmpod_api::module_ref::{self, MODULES_PATH, TAGS_PATH, TagRef};

use crate::apiserver::ApiState;
use crate::apiserver::response::{ErrorResponse, json_response, store_error};

/// The largest module a push may upload.
pub const MAX_MODULE_BYTES: usize = 256 * 1024 * 1024;

/// The media type of wasm modules and components.
const WASM_MEDIA_TYPE: &str = "application/wasm";

/// The module store's routes, to be mounted inside the API's auth layer.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            MODULES_PATH,
            post(push)
                .layer(DefaultBodyLimit::max(MAX_MODULE_BYTES))
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{MODULES_PATH}/{{digest}}"),
            get(get_module)
                .head(head_module)
                .fallback(method_not_allowed),
        )
        .route(TAGS_PATH, get(list_tags).fallback(method_not_allowed))
        .route(
            &format!("{TAGS_PATH}/{{*reference}}"),
            get(get_tag).fallback(method_not_allowed),
        )
}

#[derive(Debug, Deserialize)]
struct PushParams {
    tag: Option<String>,
}

async fn push(
    State(state): State<ApiState>,
    params: Result<Query<PushParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(push_module(&state, params, &headers, body).await)
}

async fn push_module(
    state: &ApiState,
    params: Result<Query<PushParams>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::BadRequest(format!("query parameters: {e}")))?;
    check_content_type(headers)?;
    let tag = params
        .tag
        .as_deref()
        .map(TagRef::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("query parameter tag: {e}")))?;
    let bytes = read_module(headers, body).await?;
    check_wasm(&bytes)?;
    let digest = digest_of(&bytes);
    let created = state
        .store
        .put_module_blob(&digest, &bytes)
        .await
        .map_err(|e| store_error("", "modules", e))?;
    let reference = match &tag {
        Some(tag) => {
            let name = tag.to_string();
            state
                .store
                .set_module_tag(&name, &digest)
                .await
                .map_err(|e| store_error("", "tags", e))?;
            format!("{name}@{digest}")
        }
        None => digest.clone(),
    };
    tracing::info!(%digest, size = bytes.len(), %reference, created, "module pushed");
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        code,
        &json!({"digest": digest, "size": bytes.len(), "reference": reference}),
    ))
}

/// Accepts `application/wasm`, `application/octet-stream`, or no type.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        WASM_MEDIA_TYPE | "application/octet-stream" | "" => Ok(()),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "a module is sent as application/wasm or application/octet-stream, not {other:?}"
        ))),
    }
}

/// Reads the body, refusing more than [`MAX_MODULE_BYTES`] (early when the
/// client announced the length).
async fn read_module(headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::RequestEntityTooLarge(format!(
            "the module is larger than the limit of {MAX_MODULE_BYTES} bytes"
        ))
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_MODULE_BYTES as u64) {
        return Err(too_large());
    }
    to_bytes(body, MAX_MODULE_BYTES).await.map_err(|e| {
        let limit = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if limit {
            too_large()
        } else {
            ApiError::BadRequest(format!("reading the request body: {e}"))
        }
    })
}

/// A core module (`\0asm`, version 1) or a component (`\0asm`, layer 1).
fn check_wasm(bytes: &[u8]) -> Result<(), ApiError> {
    let wasm = match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, layer, 0]) => *layer <= 1,
        _ => false,
    };
    if wasm {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "body is not a WebAssembly module: a core module or component starts with \\0asm"
                .into(),
        ))
    }
}

fn digest_of(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut digest = String::with_capacity(71);
    digest.push_str("sha256:");
    for b in hash {
        digest.push_str(&format!("{b:02x}"));
    }
    digest
}

async fn get_module(State(state): State<ApiState>, Path(digest): Path<String>) -> Response {
    respond(module_bytes(&state, &digest).await)
}

async fn module_bytes(state: &ApiState, digest: &str) -> Result<Response, ApiError> {
    module_ref::validate_digest(digest).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let data = state
        .store
        .module_blob(digest)
        .await
        .map_err(|e| store_error("", "modules", e))?
        .ok_or_else(|| module_not_found(digest))?;
    Ok(wasm_response(data.len() as u64, Body::from(data)))
}

async fn head_module(State(state): State<ApiState>, Path(digest): Path<String>) -> Response {
    respond(module_size(&state, &digest).await)
}

async fn module_size(state: &ApiState, digest: &str) -> Result<Response, ApiError> {
    module_ref::validate_digest(digest).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let size = state
        .store
        .module_blob_size(digest)
        .await
        .map_err(|e| store_error("", "modules", e))?
        .ok_or_else(|| module_not_found(digest))?;
    Ok(wasm_response(size, Body::empty()))
}

fn wasm_response(size: u64, body: Body) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(WASM_MEDIA_TYPE),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    resp
}

fn module_not_found(digest: &str) -> ApiError {
    ApiError::NotFound {
        target: Target {
            group: String::new(),
            kind: "modules".into(),
            name: digest.into(),
        },
        message: format!("module {digest:?} not found"),
    }
}

async fn get_tag(State(state): State<ApiState>, Path(reference): Path<String>) -> Response {
    respond(tag(&state, &reference).await)
}

async fn tag(state: &ApiState, reference: &str) -> Result<Response, ApiError> {
    let tag = TagRef::parse(reference).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let name = tag.to_string();
    let digest = state
        .store
        .module_tag(&name)
        .await
        .map_err(|e| store_error("", "tags", e))?
        .ok_or_else(|| ApiError::NotFound {
            target: Target {
                group: String::new(),
                kind: "tags".into(),
                name: name.clone(),
            },
            message: format!("tag {name:?} not found"),
        })?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"name": name, "digest": digest}),
    ))
}

async fn list_tags(State(state): State<ApiState>) -> Response {
    let tags = state
        .store
        .module_tags()
        .await
        .map_err(|e| store_error("", "tags", e));
    respond(tags.map(|tags| {
        let items: Vec<_> = tags
            .into_iter()
            .map(|t| json!({"name": t.name, "digest": t.digest}))
            .collect();
        json_response(StatusCode::OK, &json!({ "tags": items }))
    }))
}

async fn method_not_allowed() -> Response {
    ErrorResponse(ApiError::MethodNotAllowed(
        "the module store serves GET and HEAD of modules and tags, and POST of modules".into(),
    ))
    .into_response()
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| ErrorResponse(e).into_response())
}

#[cfg(test)]
mod tests;
