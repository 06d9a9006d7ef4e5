//! Lists: label and field selectors, `limit`/`continue` paging over
//! consistent snapshots, and the list representations.

use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use wasmpod_api::ApiError;
use wasmpod_api::meta;
use wasmpod_api::selector::{FieldSelector, LabelSelector};

use super::ApiState;
use super::objects::{include_object, map_store};
use super::request::ResourceRequest;
use super::response::{Representation, json_response, negotiate, partial_metadata};
use super::table;
use crate::store::{StoreError, Stored};

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

pub(super) fn list_body(
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
