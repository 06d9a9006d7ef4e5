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
use wasmpod_api::selector::{FieldSelector, LabelSelector};

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

/// Label and field selectors of a list, watch or deletecollection.
pub(super) struct Selectors {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Selectors {
    pub fn parse(req: &ResourceRequest) -> Result<Selectors, ApiError> {
        let labels = match &req.query.label_selector {
            Some(s) => Some(
                LabelSelector::parse(s)
                    .map_err(|e| ApiError::BadRequest(format!("labelSelector: {e}")))?,
            ),
            None => None,
        };
        let fields = match &req.query.field_selector {
            Some(s) => {
                let f = FieldSelector::parse(s)
                    .map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
                f.check_supported(req.resource.kind)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                Some(f)
            }
            None => None,
        };
        Ok(Selectors { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels
            .as_ref()
            .is_none_or(|l| l.matches(meta::labels(obj)))
            && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }
}

/// Where a paged list continues: the revision of its first page and the
/// last (namespace, name) returned.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: i64,
    ns: String,
    name: String,
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| ApiError::BadRequest("continue: invalid continue token".into()))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::BadRequest("continue: invalid continue token".into()))
}

fn encode_continue(t: &ContinueToken) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(t).unwrap_or_default())
}

/// A filtered list: the objects, the revision it is consistent with, and
/// the continue token when `limit` cut it short.
pub(super) struct Listed {
    pub items: Vec<Stored>,
    pub revision: i64,
    pub continue_token: Option<String>,
}

/// Lists objects matching the request's selectors, honouring limit/continue.
/// Later pages read current state after the previous page's last key and
/// carry the first page's revision, so a watch from it replays every change
/// the pages may have missed.
pub(super) async fn list_objects(
    state: &ApiState,
    req: &ResourceRequest,
) -> Result<Listed, ApiError> {
    let selectors = Selectors::parse(req)?;
    let namespace = if req.resource.namespaced {
        req.namespace.as_deref()
    } else {
        None
    };
    let (mut cursor, token_rev) = match &req.query.continue_token {
        Some(t) => {
            let t = decode_continue(t)?;
            (Some((t.ns, t.name)), Some(t.rv))
        }
        None => (None, None),
    };
    if let Some(rv) = token_rev {
        // A token is only good while a watch from its revision still works.
        if let Err(StoreError::Expired { .. }) =
            state.store.watch(&req.resource.key(), namespace, rv)
        {
            return Err(expired_continue());
        }
    }
    let limit = req.query.limit;
    let page_size = limit.map(|l| l.clamp(100, 5000));
    let mut items = Vec::new();
    // Every page after the first is read as of the first page's revision.
    let mut revision = token_rev;
    loop {
        let after = cursor.as_ref().map(|(ns, n)| (ns.as_str(), n.as_str()));
        let key = req.resource.key();
        let page = match revision {
            None => state.store.list(&key, namespace, after, page_size).await,
            Some(at) => {
                super::list_snapshot::page_at(&state.store, &key, namespace, after, page_size, at)
                    .await
            }
        };
        let page = page.map_err(|e| match e {
            StoreError::Expired { .. } => expired_continue(),
            e => map_store(req, e),
        })?;
        revision.get_or_insert(page.revision);
        let mut iter = page.items.into_iter();
        let mut cut = false;
        for s in iter.by_ref() {
            let pos = (
                meta::namespace(&s.object).unwrap_or_default().to_string(),
                meta::name(&s.object).unwrap_or_default().to_string(),
            );
            if selectors.matches(&s.object) {
                items.push(s);
            }
            cursor = Some(pos);
            if limit.is_some_and(|l| items.len() >= l) {
                cut = true;
                break;
            }
        }
        let more = page.more || iter.next().is_some();
        if cut || !more {
            let revision = revision.unwrap_or_default();
            let continue_token = match (cut && more, cursor) {
                (true, Some((ns, name))) => Some(encode_continue(&ContinueToken {
                    rv: revision,
                    ns,
                    name,
                })),
                _ => None,
            };
            return Ok(Listed {
                items,
                revision,
                continue_token,
            });
        }
    }
}

fn expired_continue() -> ApiError {
    ApiError::Expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
    )
}

pub async fn list(
    state: &ApiState,
    req: &ResourceRequest,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let repr = negotiate(headers)?;
    let listed = list_objects(state, req).await?;
    let rv = listed.revision.to_string();
    let body = match repr {
        Representation::Table => {
            let objs: Vec<&Value> = listed.items.iter().map(|s| s.object.as_ref()).collect();
            table::table(
                req.resource,
                &objs,
                include_object(req)?,
                &rv,
                listed.continue_token.as_deref(),
            )
        }
        Representation::Object => list_body(
            &req.resource.list_kind(),
            &req.resource.api_version(),
            &rv,
            listed.continue_token.as_deref(),
            listed
                .items
                .iter()
                .map(|s| s.object.as_ref().clone())
                .collect(),
        ),
        Representation::PartialObjectMetadata => list_body(
            "PartialObjectMetadataList",
            "meta.k8s.io/v1",
            &rv,
            listed.continue_token.as_deref(),
            listed
                .items
                .iter()
                .map(|s| partial_metadata(&s.object))
                .collect(),
        ),
    };
    Ok(json_response(StatusCode::OK, &body))
}

fn list_body(
    kind: &str,
    api_version: &str,
    rv: &str,
    cont: Option<&str>,
    items: Vec<Value>,
) -> Value {
    let mut metadata = json!({ "resourceVersion": rv });
    if let Some(c) = cont {
        metadata["continue"] = json!(c);
    }
    json!({ "kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items })
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
    let finished = meta::is_deleting(&new)
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
        let expected = precondition(req, &patched, &current)?;
        let new = merge_for_update(req.resource, &current.object, patched, None);
        match write_update(state, req, &current, new).await {
            Err(ApiError::Conflict { .. }) if expected.is_none() && attempt < RETRIES => continue,
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

/// `DeleteOptions` as sent in a DELETE body or query.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteOptions {
    grace_period_seconds: Option<i64>,
    propagation_policy: Option<String>,
    orphan_dependents: Option<bool>,
    preconditions: Option<Preconditions>,
    dry_run: Option<Vec<String>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

pub(super) async fn delete_options(
    req: &ResourceRequest,
    body: Body,
) -> Result<DeleteOptions, ApiError> {
    let bytes = body::read(body).await?;
    let mut opts: DeleteOptions = if bytes.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("invalid DeleteOptions: {e}")))?
    };
    if opts.grace_period_seconds.is_none() {
        opts.grace_period_seconds = req.query.grace_period_seconds;
    }
    if opts.propagation_policy.is_none() {
        opts.propagation_policy = req.query.propagation_policy.clone();
    }
    if opts.orphan_dependents == Some(true) && opts.propagation_policy.is_none() {
        opts.propagation_policy = Some("Orphan".into());
    }
    match opts.propagation_policy.as_deref() {
        None | Some("Background" | "Foreground" | "Orphan") => {}
        Some(p) => {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                vec![wasmpod_api::FieldError::not_supported(
                    "propagationPolicy",
                    p,
                    &["Foreground", "Background", "Orphan"],
                )],
            ));
        }
    }
    Ok(opts)
}

pub async fn delete(
    state: &ApiState,
    req: &ResourceRequest,
    body: Body,
) -> Result<Response, ApiError> {
    let opts = delete_options(req, body).await?;
    let dry_run = req.query.dry_run
        || opts
            .dry_run
            .as_ref()
            .is_some_and(|d| d.iter().any(|s| s == "All"));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = current(state, req).await?;
        match delete_one(state, req, &current, &opts, dry_run).await {
            Err(ApiError::Conflict { .. }) if attempt < RETRIES && opts.preconditions.is_none() => {
                continue;
            }
            Err(e) => return Err(e),
            Ok((code, obj)) => return Ok(json_response(code, &obj)),
        }
    }
}

/// Deletes one object, or starts its graceful deletion when it has
/// finalizers to wait for or is a pod running on a node.
pub(super) async fn delete_one(
    state: &ApiState,
    req: &ResourceRequest,
    current: &Stored,
    opts: &DeleteOptions,
    dry_run: bool,
) -> Result<(StatusCode, Value), ApiError> {
    let name = meta::name(&current.object).unwrap_or_default().to_string();
    let key = Key::new(
        req.resource.key(),
        meta::namespace(&current.object).unwrap_or_default(),
        &name,
    );
    if let Some(p) = &opts.preconditions {
        if let Some(uid) = &p.uid
            && meta::uid(&current.object) != Some(uid.as_str())
        {
            return Err(ApiError::conflict(
                req.resource.group,
                req.resource.plural,
                &name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::uid(&current.object).unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &p.resource_version
            && *rv != current.revision.to_string()
        {
            return Err(ApiError::conflict(
                req.resource.group,
                req.resource.plural,
                &name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    current.revision
                ),
            ));
        }
    }
    let plan = admission::deletion_plan(
        req.resource,
        &current.object,
        opts.grace_period_seconds,
        opts.propagation_policy.as_deref(),
    );
    let Some(marked) = plan else {
        let mut ops = vec![Op::Delete {
            key,
            expected_revision: Some(current.revision),
        }];
        ops.extend(admission::release_ops(state, req.resource, &current.object).await);
        if dry_run {
            return Ok((StatusCode::OK, current.object.as_ref().clone()));
        }
        let mut stored = state
            .store
            .commit(ops)
            .await
            .map_err(|e| map_store(req, e))?;
        let deleted = if stored.is_empty() {
            current.object.as_ref().clone()
        } else {
            stored.swap_remove(0).object.as_ref().clone()
        };
        return Ok((StatusCode::OK, deleted));
    };
    if dry_run || marked == *current.object {
        return Ok((StatusCode::OK, marked));
    }
    let stored = state
        .store
        .update(key, marked, Some(current.revision))
        .await
        .map_err(|e| map_store(req, e))?;
    if req.resource.kind == "Namespace" {
        state.namespace_terminating(&name);
    }
    Ok((StatusCode::OK, stored.object.as_ref().clone()))
}

pub async fn delete_collection(
    state: &ApiState,
    req: &ResourceRequest,
    body: Body,
) -> Result<Response, ApiError> {
    let opts = delete_options(req, body).await?;
    let listed = list_objects(state, req).await?;
    let mut deleted = Vec::with_capacity(listed.items.len());
    for item in &listed.items {
        match delete_one(state, req, item, &opts, req.query.dry_run).await {
            Ok((_, obj)) => deleted.push(obj),
            // Gone or changed since the list: the next deletecollection sees it.
            Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let body = list_body(
        &req.resource.list_kind(),
        &req.resource.api_version(),
        &listed.revision.to_string(),
        None,
        deleted,
    );
    Ok(json_response(StatusCode::OK, &body))
}
