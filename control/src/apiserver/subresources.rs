//! The stored subresources: `status`, `scale`, `binding` and (namespaces)
//! `finalize`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use wasmpod_api::meta;
use wasmpod_api::registry::{ResourceType, Subresource};
use wasmpod_api::selector::LabelSelector;
use wasmpod_api::{ApiError, FieldError};

use super::ApiState;
use super::body;
use super::objects::{
    self, apply_patch, check_identity, current, decode_patch, merge_for_update, precondition,
    write_update,
};
use super::request::{ResourceRequest, Verb};
use super::response::{json_response, negotiate};
use crate::store::Key;

const RETRIES: usize = 8;

pub async fn handle(
    state: &ApiState,
    req: &ResourceRequest,
    sub: Subresource,
    verb: Verb,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    match (sub, verb) {
        (Subresource::Status, Verb::Get) => objects::get(state, req, headers).await,
        (Subresource::Status | Subresource::Finalize, Verb::Update) => {
            let repr = negotiate(headers)?;
            let (obj, warnings) = objects::read_object(req, headers, body, req.resource).await?;
            check_identity(req, &obj)?;
            let mut attempt = 0;
            let stored = loop {
                attempt += 1;
                let current = current(state, req).await?;
                let expected = precondition(req, &obj, &current)?;
                let new = match sub {
                    Subresource::Status => merge_for_update(
                        req.resource,
                        &current.object,
                        obj.clone(),
                        Some(Subresource::Status),
                    ),
                    _ => with_finalizers(&current.object, &obj),
                };
                match write_update(state, req, &current, new).await {
                    // Without a resourceVersion the write is unconditional: retry a race.
                    Err(ApiError::Conflict { .. }) if expected.is_none() && attempt < RETRIES => {
                        continue;
                    }
                    result => break result?,
                }
            };
            let mut resp = objects::render_one(req, repr, &stored, StatusCode::OK)?;
            super::response::add_warnings(&mut resp, &warnings);
            Ok(resp)
        }
        (Subresource::Status, Verb::Patch) => {
            let repr = negotiate(headers)?;
            let kind = body::content_type(headers)?;
            let patch = decode_patch(kind, &body::read(body).await?)?;
            for attempt in 1..=RETRIES {
                let current = current(state, req).await?;
                let patched = apply_patch(req.resource, kind, &current.object, &patch)?;
                // As for the main resource: a race is retried, and a
                // resourceVersion set by the patch is checked again.
                precondition(req, &patched, &current)?;
                let new = merge_for_update(
                    req.resource,
                    &current.object,
                    patched,
                    Some(Subresource::Status),
                );
                match write_update(state, req, &current, new).await {
                    Err(ApiError::Conflict { .. }) if attempt < RETRIES => {
                        continue;
                    }
                    Err(e) => return Err(e),
                    Ok(stored) => return objects::render_one(req, repr, &stored, StatusCode::OK),
                }
            }
            Err(conflict(req))
        }
        (Subresource::Scale, Verb::Get) => {
            let current = current(state, req).await?;
            Ok(json_response(
                StatusCode::OK,
                &scale_of(req.resource, &current.object),
            ))
        }
        (Subresource::Scale, Verb::Update | Verb::Patch) => {
            scale(state, req, verb, headers, body).await
        }
        (Subresource::Binding, Verb::Create) => bind(state, req, headers, body).await,
        (sub, verb) => Err(ApiError::MethodNotAllowed(format!(
            "{}/{} does not support {verb:?}",
            req.resource.plural,
            sub.name()
        ))),
    }
}

fn conflict(req: &ResourceRequest) -> ApiError {
    ApiError::conflict(
        req.resource.group,
        req.resource.plural,
        objects::name(req),
        "the object has been modified; please apply your changes to the latest version and try again",
    )
}

/// A namespace with the body's `spec.finalizers` (all `finalize` may change).
fn with_finalizers(current: &Value, body: &Value) -> Value {
    let mut new = current.clone();
    let finalizers = body
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or(json!([]));
    match new.get_mut("spec").and_then(Value::as_object_mut) {
        Some(spec) => {
            spec.insert("finalizers".into(), finalizers);
        }
        None => new["spec"] = json!({ "finalizers": finalizers }),
    }
    new
}

/// The `autoscaling/v1 Scale` view of a scalable object.
pub fn scale_of(resource: &ResourceType, obj: &Value) -> Value {
    let m = meta::metadata(obj).cloned().unwrap_or_default();
    let selector = match obj.pointer("/spec/selector") {
        Some(sel) if resource.kind == "ReplicationController" => sel
            .as_object()
            .map(|m| {
                let mut pairs: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                pairs.sort();
                pairs.join(",")
            })
            .unwrap_or_default(),
        Some(sel) => serde_json::from_value(sel.clone())
            .ok()
            .and_then(|s| LabelSelector::from_api(&s).ok())
            .map(|s| s.to_string())
            .unwrap_or_default(),
        None => String::new(),
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) },
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

async fn scale(
    state: &ApiState,
    req: &ResourceRequest,
    verb: Verb,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = body::content_type(headers)?;
    let bytes = body::read(body).await?;
    let input = if verb == Verb::Update {
        body::decode(&bytes, kind == body::BodyType::Yaml)?
    } else {
        decode_patch(kind, &bytes)?
    };
    for attempt in 1..=RETRIES {
        let current = current(state, req).await?;
        let old_scale = scale_of(req.resource, &current.object);
        let new_scale = match verb {
            Verb::Update => input.clone(),
            _ => {
                // A Scale has no lists, so a strategic merge is a plain merge.
                let mut s = old_scale.clone();
                match kind {
                    body::BodyType::JsonPatch => wasmpod_api::patch::json_patch(&mut s, &input)
                        .map_err(|e| {
                            ApiError::BadRequest(format!("the JSON patch cannot be applied: {e}"))
                        })?,
                    _ => wasmpod_api::patch::merge_patch(&mut s, &input),
                }
                s
            }
        };
        let replicas = match new_scale.pointer("/spec/replicas") {
            None => 0,
            Some(v) => v
                .as_i64()
                .filter(|r| *r >= 0 && *r <= i64::from(i32::MAX))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "autoscaling",
                        "Scale",
                        objects::name(req),
                        vec![FieldError::invalid(
                            "spec.replicas",
                            v,
                            "must be greater than or equal to 0",
                        )],
                    )
                })?,
        };
        let expected = precondition(req, &new_scale, &current)?;
        let mut new = current.object.as_ref().clone();
        match new.get_mut("spec").and_then(Value::as_object_mut) {
            Some(spec) => {
                spec.insert("replicas".into(), json!(replicas));
            }
            None => new["spec"] = json!({ "replicas": replicas }),
        }
        let new = merge_for_update(req.resource, &current.object, new, None);
        match write_update(state, req, &current, new).await {
            // A patched Scale inherits the stored resourceVersion, so a
            // patch is retried like an update that named none.
            Err(ApiError::Conflict { .. })
                if (expected.is_none() || verb == Verb::Patch) && attempt < RETRIES =>
            {
                continue;
            }
            Err(e) => return Err(e),
            Ok(stored) => {
                return Ok(json_response(
                    StatusCode::OK,
                    &scale_of(req.resource, &stored),
                ));
            }
        }
    }
    Err(conflict(req))
}

/// `pods/{name}/binding`: assigns an unbound pod to a node.
async fn bind(
    state: &ApiState,
    req: &ResourceRequest,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = body::content_type(headers)?;
    let binding = body::decode(&body::read(body).await?, kind == body::BodyType::Yaml)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "",
                "Binding",
                objects::name(req),
                vec![FieldError::required("target.name")],
            )
        })?;
    let pod_name = objects::name(req);
    for attempt in 1..=RETRIES {
        let current = current(state, req).await?;
        if let Some(bound) = current
            .object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                "",
                "pods",
                pod_name,
                &format!("pod {pod_name} is already assigned to node \"{bound}\""),
            ));
        }
        if meta::is_deleting(&current.object) {
            return Err(ApiError::conflict(
                "",
                "pods",
                pod_name,
                "the pod is being deleted",
            ));
        }
        let mut pod = current.object.as_ref().clone();
        pod["spec"]["nodeName"] = json!(node);
        set_condition(
            &mut pod,
            json!({
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": null,
                "lastTransitionTime": super::admission::now(),
            }),
        );
        let key = Key::new("pods", req.namespace.clone().unwrap_or_default(), pod_name);
        match state.store.update(key, pod, Some(current.revision)).await {
            Err(crate::store::StoreError::Conflict { .. }) if attempt < RETRIES => continue,
            Err(e) => return Err(objects::map_store(req, e)),
            Ok(_) => {
                return Ok(json_response(
                    StatusCode::CREATED,
                    &json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201
                    }),
                ));
            }
        }
    }
    Err(conflict(req))
}

/// Replaces (or adds) a pod condition of the same type.
fn set_condition(pod: &mut Value, condition: Value) {
    let kind = condition["type"].clone();
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let conditions = pod["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    if let Some(Value::Array(list)) = conditions {
        list.retain(|c| c["type"] != kind);
        list.push(condition);
    }
}
