//! Deletes: DeleteOptions, preconditions, graceful deletion behind
//! finalizers, and deletecollection.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::Value;
use wasmpod_api::ApiError;
use wasmpod_api::meta;

use super::ApiState;
use super::admission;
use super::body;
use super::list::{list_body, list_objects};
use super::objects::{current, map_store};
use super::request::ResourceRequest;
use super::response::json_response;
use crate::store::{Key, Op, Stored};

/// Attempts of a delete before giving up on conflicts.
const RETRIES: usize = 8;

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

/// Deletes one listed object as a delete by name would: an object changed
/// since the list (a node posting its pod's status) is read again and
/// deleted; one gone meanwhile is skipped (`None`).
async fn delete_listed(
    state: &ApiState,
    req: &ResourceRequest,
    listed: &Stored,
    opts: &DeleteOptions,
) -> Result<Option<Value>, ApiError> {
    let key = Key::new(
        req.resource.key(),
        meta::namespace(&listed.object).unwrap_or_default(),
        meta::name(&listed.object).unwrap_or_default(),
    );
    let mut current = listed.clone();
    for attempt in 1..=RETRIES {
        match delete_one(state, req, &current, opts, req.query.dry_run).await {
            Ok((_, obj)) => return Ok(Some(obj)),
            Err(ApiError::NotFound { .. }) => return Ok(None),
            Err(ApiError::Conflict { .. }) if attempt < RETRIES && opts.preconditions.is_none() => {
                match state.store.get(&key).await.map_err(|e| map_store(req, e))? {
                    Some(newer) => current = newer,
                    None => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
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
        match delete_listed(state, req, item, &opts).await {
            Ok(Some(obj)) => deleted.push(obj),
            Ok(None) => {}
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
