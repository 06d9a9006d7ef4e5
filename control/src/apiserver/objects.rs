//! The verbs on a resource itself: get, list, create, update, patch,
//! delete and deletecollection.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use wasmpod_api::ApiError;
use wasmpod_api::meta;
use wasmpod_api::object::AdmitError;
use wasmpod_api::registry::{ResourceType, Subresource};

use super::ApiState;
use super::admission;
use super::body::{self, BodyType};
use super::request::ResourceRequest;
use super::response::{
    Representation, add_warnings, json_response, negotiate, partial_metadata, store_error,
};
use super::table;
use crate::store::{Key, Op, StoreError, Stored};

/// Attempts of a read-modify-write (patch, delete) before giving up on conflicts.
const RETRIES: usize = 8;

pub(super) fn key(req: &ResourceRequest, name: &str) -> Key {
    let ns = if req.resource.namespaced {
        req.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    Key::new(req.resource.key(), ns, name)
}

pub(super) fn name(req: &ResourceRequest) -> &str {
    req.name.as_deref().unwrap_or_default()
}

pub(super) fn require_namespace(req: &ResourceRequest) -> Result<&str, ApiError> {
    match (&req.namespace, req.resource.namespaced) {
        (Some(ns), true) => Ok(ns),
        (None, true) => Err(ApiError::BadRequest(format!(
            "{} is namespaced: the request must name a namespace (/namespaces/{{namespace}}/{})",
            req.resource.plural, req.resource.plural
        ))),
        (_, false) => Ok(""),
    }
}

pub(super) fn map_store(req: &ResourceRequest, e: StoreError) -> ApiError {
    store_error(req.resource.group, req.resource.plural, e)
}

/// Loads the object the request names, or 404.
pub(super) async fn current(state: &ApiState, req: &ResourceRequest) -> Result<Stored, ApiError> {
    require_namespace(req)?;
    let name = name(req);
    state
        .store
        .get(&key(req, name))
        .await
        .map_err(|e| map_store(req, e))?
        .ok_or_else(|| ApiError::not_found(req.resource.group, req.resource.plural, name))
}

pub async fn get(
    state: &ApiState,
    req: &ResourceRequest,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let repr = negotiate(headers)?;
    let stored = current(state, req).await?;
    render_one(req, repr, &stored.object, StatusCode::OK)
}

/// Renders one object in the negotiated representation.
pub(super) fn render_one(
    req: &ResourceRequest,
    repr: Representation,
    obj: &Value,
    code: StatusCode,
) -> Result<Response, ApiError> {
    let body = match repr {
        Representation::Object => return Ok(json_response(code, obj)),
        Representation::Table => {
            let rv = meta::resource_version(obj).unwrap_or_default().to_string();
            table::table(req.resource, &[obj], include_object(req)?, &rv, None)
        }
        Representation::PartialObjectMetadata => partial_metadata(obj),
    };
    Ok(json_response(code, &body))
}

pub(super) fn include_object(req: &ResourceRequest) -> Result<table::IncludeObject, ApiError> {
    match req.query.include_object.as_deref() {
        None => Ok(table::IncludeObject::Metadata),
        Some(v) => table::IncludeObject::parse(v).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "includeObject: unsupported value {v:?}: must be None, Metadata or Object"
            ))
        }),
    }
}

/// Reads and decodes an object body (JSON or YAML), checking its type meta
/// and fields. Returns the object and the field warnings.
pub(super) async fn read_object(
    req: &ResourceRequest,
    headers: &HeaderMap,
    body: Body,
    expect: &ResourceType,
) -> Result<(Value, Vec<String>), ApiError> {
    let yaml = match body::content_type(headers)? {
        BodyType::Json => false,
        BodyType::Yaml => true,
        BodyType::Protobuf => {
            let bytes = body::read(body).await?;
            let mut obj = super::protobuf::decode(&bytes, expect)?;
            check_type_meta(&mut obj, expect)?;
            let warnings = body::check_fields(expect, None, &obj, req.query.field_validation)?;
            return Ok((obj, warnings));
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{other:?} bodies are only accepted by PATCH"
            )));
        }
    };
    let bytes = body::read(body).await?;
    let mut obj = body::decode(&bytes, yaml)?;
    check_type_meta(&mut obj, expect)?;
    let warnings = body::check_fields(
        expect,
        Some((&bytes, yaml)),
        &obj,
        req.query.field_validation,
    )?;
    Ok((obj, warnings))
}

/// Fills a missing apiVersion/kind from the endpoint and rejects a mismatch.
pub(super) fn check_type_meta(obj: &mut Value, expect: &ResourceType) -> Result<(), ApiError> {
    let Value::Object(map) = obj else {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    let api_version = expect.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None => {
            map.insert("apiVersion".into(), json!(api_version));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None => {
            map.insert("kind".into(), json!(expect.kind));
        }
        Some(k) if k == expect.kind => {}
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                expect.kind
            )));
        }
    }
    Ok(())
}

/// Runs defaulting and validation of the kind.
pub(super) fn admit(
    resource: &ResourceType,
    new: Value,
    old: Option<&Value>,
) -> Result<Value, ApiError> {
    let name = meta::name(&new).unwrap_or_default().to_string();
    resource.ops.admit(new, old).map_err(|e| match e {
        AdmitError::Decode(msg) => ApiError::BadRequest(msg),
        AdmitError::Invalid(causes) => {
            ApiError::invalid(resource.group, resource.kind, &name, causes)
        }
    })
}

pub async fn create(
    state: &ApiState,
    req: &ResourceRequest,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let repr = negotiate(headers)?;
    let ns = require_namespace(req)?.to_string();
    let (obj, warnings) = read_object(req, headers, body, req.resource).await?;
    let stored = create_object(state, req.resource, &ns, obj, req.query.dry_run).await?;
    let mut resp = render_one(req, repr, &stored, StatusCode::CREATED)?;
    add_warnings(&mut resp, &warnings);
    Ok(resp)
}

/// Creates an object of `resource` in namespace `ns` (empty for
/// cluster-scoped kinds): system metadata, allocations, defaulting,
/// validation, then one atomic commit. Used by requests and by bootstrap.
pub async fn create_object(
    state: &ApiState,
    resource: &'static ResourceType,
    ns: &str,
    mut obj: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    admission::prepare_create(state, resource, ns, &mut obj).await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut candidate = obj.clone();
        let extra = admission::allocate(state, resource, &mut candidate).await?;
        let admitted = admit(resource, candidate, None)?;
        if dry_run {
            return Ok(admitted);
        }
        let name = meta::name(&admitted).unwrap_or_default().to_string();
        let mut ops = vec![Op::Create {
            key: Key::new(resource.key(), ns, name),
            object: admitted,
        }];
        ops.extend(extra);
        match state.store.commit(ops).await {
            Ok(mut stored) if !stored.is_empty() => {
                return Ok(stored.swap_remove(0).object.as_ref().clone());
            }
            Ok(_) => {
                return Err(ApiError::Internal(
                    "the store returned no object for a create".into(),
                ));
            }
            Err(StoreError::AlreadyExists(k))
                if admission::is_allocation(&k) && attempt < RETRIES =>
            {
                continue;
            }
            Err(StoreError::AlreadyExists(k)) if admission::is_allocation(&k) => {
                return Err(admission::allocation_taken(resource, &obj, &k));
            }
            Err(e) => return Err(store_error(resource.group, resource.plural, e)),
        }
    }
}

pub async fn update(
    state: &ApiState,
    req: &ResourceRequest,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let repr = negotiate(headers)?;
    let (obj, warnings) = read_object(req, headers, body, req.resource).await?;
    check_identity(req, &obj)?;
    let mut attempt = 0;
    let stored = loop {
        attempt += 1;
        let current = current(state, req).await?;
        let expected = precondition(req, &obj, &current)?;
        let new = merge_for_update(req.resource, &current.object, obj.clone(), None);
        match write_update(state, req, &current, new).await {
            // Without a resourceVersion the update is unconditional: retry on a race.
            Err(ApiError::Conflict { .. }) if expected.is_none() && attempt < RETRIES => continue,
            result => break result?,
        }
    };
    let mut resp = render_one(req, repr, &stored, StatusCode::OK)?;
    add_warnings(&mut resp, &warnings);
    Ok(resp)
}

/// Rejects a body whose name or namespace differs from the URL's.
pub(super) fn check_identity(req: &ResourceRequest, obj: &Value) -> Result<(), ApiError> {
    let url_name = name(req);
    match meta::name(obj) {
        Some(n) if n != url_name => {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({n}) does not match the name on the URL ({url_name})"
            )));
        }
        _ => {}
    }
    if req.resource.namespaced
        && let (Some(body_ns), Some(url_ns)) = (meta::namespace(obj), req.namespace.as_deref())
        && !body_ns.is_empty()
        && body_ns != url_ns
    {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    Ok(())
}

/// The resourceVersion precondition of an update body, checked against
/// the stored object: a stale one is a 409 Conflict.
pub(super) fn precondition(
    req: &ResourceRequest,
    obj: &Value,
    current: &Stored,
) -> Result<Option<i64>, ApiError> {
    let Some(rv) = meta::resource_version(obj).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let rv: i64 = rv.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "metadata.resourceVersion: Invalid value: {rv:?}: must be a resource version"
        ))
    })?;
    if rv != current.revision {
        return Err(ApiError::conflict(
            req.resource.group,
            req.resource.plural,
            name(req),
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    Ok(Some(rv))
}

/// Builds the object an update stores from the stored one and the body:
/// system metadata always comes from the stored object; `.status` comes
/// from it too unless `subresource` is `status`, in which case only the
/// body's `.status` is taken.
pub(super) fn merge_for_update(
    resource: &ResourceType,
    current: &Value,
    mut new: Value,
    subresource: Option<Subresource>,
) -> Value {
    if subresource == Some(Subresource::Status) {
        let mut merged = current.clone();
        match new.get_mut("status").map(Value::take) {
            Some(status) => merged["status"] = status,
            None => {
                if let Value::Object(m) = &mut merged {
                    m.remove("status");
                }
            }
        }
        return merged;
    }
    let cur_meta = meta::metadata(current).cloned().unwrap_or_default();
    let new_meta = meta::metadata_mut(&mut new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match cur_meta.get(field) {
            Some(v) => {
                new_meta.insert(field.into(), v.clone());
            }
            None => {
                new_meta.remove(field);
            }
        }
    }
    new_meta.remove("resourceVersion");
    new_meta.remove("managedFields");
    new_meta.remove("selfLink");
    if resource.has(Subresource::Status)
        && resource.kind != "Node"
        && let Value::Object(m) = &mut new
    {
        match current.get("status") {
            Some(s) => {
                m.insert("status".into(), s.clone());
            }
            None => {
                m.remove("status");
            }
        }
    }
    new
}

/// Admits and stores an update of `current`. Bumps `metadata.generation`
/// when `.spec` changed, and completes a pending deletion once the last
/// finalizer is gone. A conflict is returned as is; callers that did not
/// ask for a specific resourceVersion retry.
pub(super) async fn write_update(
    state: &ApiState,
    req: &ResourceRequest,
    current: &Stored,
    new: Value,
) -> Result<Value, ApiError> {
    let mut new = admit(req.resource, new, Some(&current.object))?;
    if req.resource.has_spec() && new.get("spec") != current.object.get("spec") {
        let generation = meta::metadata(&current.object)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta::metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
    }
    let key = key(req, name(req));
    let mut ops = admission::update_ops(state, req.resource, &current.object, &mut new).await?;
    if ops.is_empty() && unchanged(&new, &current.object) {
        // As kube-apiserver: an update that changes nothing writes nothing,
        // so no new revision and no watch event.
        return Ok(current.object.as_ref().clone());
    }
    // As kube-apiserver: an update ends a pending deletion only when it
    // removes the last finalizer. A status write to a pod its node is still
    // stopping (a deletion waiting for the grace period, no finalizers)
    // leaves it in place.
    let released = !meta::finalizers(&current.object).is_empty()
        || admission::awaits_finalize(req.resource, &current.object);
    let finished = released
        && meta::is_deleting(&new)
        && meta::finalizers(&new).is_empty()
        && !admission::awaits_finalize(req.resource, &new);
    if req.query.dry_run {
        return Ok(new);
    }
    if finished {
        ops.extend(admission::release_ops(state, req.resource, &current.object).await);
        ops.insert(
            0,
            Op::Delete {
                key,
                expected_revision: Some(current.revision),
            },
        );
    } else {
        ops.insert(
            0,
            Op::Update {
                key,
                object: new,
                expected_revision: Some(current.revision),
            },
        );
    }
    let mut stored = state
        .store
        .commit(ops)
        .await
        .map_err(|e| map_store(req, e))?;
    if stored.is_empty() {
        return Err(ApiError::Internal(
            "the store returned no object for an update".into(),
        ));
    }
    Ok(stored.swap_remove(0).object.as_ref().clone())
}

/// True when `new` equals `stored` but for the resourceVersion it lacks.
fn unchanged(new: &Value, stored: &Value) -> bool {
    let mut candidate = new.clone();
    if let Some(rv) = meta::resource_version(stored) {
        meta::metadata_mut(&mut candidate).insert("resourceVersion".into(), json!(rv));
    }
    candidate == *stored
}

pub async fn patch(
    state: &ApiState,
    req: &ResourceRequest,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let repr = negotiate(headers)?;
    let kind = body::content_type(headers)?;
    let bytes = body::read(body).await?;
    let patch = decode_patch(kind, &bytes)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = current(state, req).await?;
        let patched = apply_patch(req.resource, kind, &current.object, &patch)?;
        let mut patched = patched;
        check_type_meta(&mut patched, req.resource)?;
        check_identity(req, &patched)?;
        let warnings = body::check_fields(
            req.resource,
            Some((&bytes, false)),
            &patched,
            req.query.field_validation,
        )?;
        // The patched object carries the stored resourceVersion unless the
        // patch set one: a race is retried on the newer object, where a
        // resourceVersion the patch asked for no longer matches.
        precondition(req, &patched, &current)?;
        let new = merge_for_update(req.resource, &current.object, patched, None);
        match write_update(state, req, &current, new).await {
            Err(ApiError::Conflict { .. }) if attempt < RETRIES => continue,
            Err(e) => return Err(e),
            Ok(stored) => {
                let mut resp = render_one(req, repr, &stored, StatusCode::OK)?;
                add_warnings(&mut resp, &warnings);
                return Ok(resp);
            }
        }
    }
}

pub(super) fn decode_patch(kind: BodyType, bytes: &[u8]) -> Result<Value, ApiError> {
    match kind {
        BodyType::MergePatch | BodyType::StrategicMergePatch | BodyType::JsonPatch => body::decode(bytes, false),
        BodyType::ApplyPatch => Err(ApiError::UnsupportedMediaType(
            "server-side apply (application/apply-patch+yaml) is not supported; use client-side `kubectl apply`".into(),
        )),
        BodyType::Json | BodyType::Yaml | BodyType::Protobuf => Err(ApiError::UnsupportedMediaType(
            "PATCH needs application/merge-patch+json, application/strategic-merge-patch+json or application/json-patch+json".into(),
        )),
    }
}

/// Applies a decoded patch of the given type to `target`.
pub(super) fn apply_patch(
    resource: &ResourceType,
    kind: BodyType,
    target: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    use wasmpod_api::patch;
    let result = match kind {
        BodyType::MergePatch => {
            let mut t = target.clone();
            patch::merge_patch(&mut t, patch);
            Ok(t)
        }
        BodyType::JsonPatch => {
            let mut t = target.clone();
            patch::json_patch(&mut t, patch).map(|()| t)
        }
        BodyType::StrategicMergePatch => {
            patch::strategic_merge_patch(target, patch, &resource.ops.schema_name())
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{other:?} is not a patch type"
            )));
        }
    };
    result.map_err(|e| patch_error(resource, target, e))
}

/// A patch that cannot be applied, with the code its kind of failure has.
fn patch_error(
    resource: &ResourceType,
    target: &Value,
    e: wasmpod_api::patch::PatchError,
) -> ApiError {
    let message = e.to_string();
    match e.status_code() {
        413 => ApiError::RequestEntityTooLarge(message),
        415 => ApiError::UnsupportedMediaType(message),
        422 => ApiError::invalid(
            resource.group,
            resource.kind,
            meta::name(target).unwrap_or_default(),
            vec![wasmpod_api::FieldError {
                field: "patch".into(),
                reason: "FieldValueInvalid",
                message,
            }],
        ),
        _ => ApiError::BadRequest(format!("the patch cannot be applied: {message}")),
    }
}
