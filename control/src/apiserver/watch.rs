//! `?watch=true`: a stream of newline-delimited watch events for one
//! resource, filtered by namespace and selectors, in the negotiated
//! representation, with bookmarks and the 410 "Expired" error when the
//! requested revision is gone.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wasmpod_api::ApiError;

use super::ApiState;
use super::list::{Selectors, list_objects};
use super::objects::{self, include_object};
use super::request::ResourceRequest;
use super::response::{Representation, negotiate, partial_metadata};
use super::table;
use crate::store::{EventType, StoreError};

/// Watches end after this long unless `timeoutSeconds` says otherwise;
/// clients re-watch from their last revision.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

pub async fn watch(
    state: &ApiState,
    req: &ResourceRequest,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let repr = negotiate(headers)?;
    let selectors = Selectors::parse(req)?;
    let namespace = if req.resource.namespaced {
        req.namespace.clone()
    } else {
        None
    };
    let requested: Option<i64> = match req.query.resource_version.as_deref() {
        None | Some("0") => None,
        Some(rv) => Some(rv.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "resourceVersion: Invalid value: {rv:?}: must be a resource version"
            ))
        })?),
    };
    // Without a revision, a watch starts with the current state as ADDED
    // events, as kube-apiserver does; so does sendInitialEvents.
    let (initial, from) = match requested {
        Some(rv) if !req.query.send_initial_events => (Vec::new(), rv),
        _ => {
            let listed = list_objects(state, &initial_list_request(req)).await?;
            (listed.items, listed.revision)
        }
    };
    let stream = state
        .store
        .watch(&req.resource.key(), namespace.as_deref(), from)
        .map_err(|e| match e {
            StoreError::Expired { requested, oldest } => {
                ApiError::Expired(format!("too old resource version: {requested} ({oldest})"))
            }
            other => objects::map_store(req, other),
        })?;
    let timeout = req
        .query
        .timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let encoder = Encoder {
        resource: req.resource,
        repr,
        include: include_object(req)?,
        columns_sent: std::sync::atomic::AtomicBool::new(false),
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(64);
    let bookmarks = req.query.allow_bookmarks;
    let send_initial_bookmark = req.query.send_initial_events && bookmarks;
    tokio::spawn(async move {
        let mut last_revision = from;
        for stored in initial {
            if tx
                .send(Ok(encoder.line("ADDED", &stored.object, None)))
                .await
                .is_err()
            {
                return;
            }
        }
        if send_initial_bookmark {
            let mark = encoder.bookmark(last_revision, true);
            if tx.send(Ok(mark)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut stream = stream;
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            let line = tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => encoder.bookmark(last_revision, false),
                next = stream.next() => match next {
                    None => return,
                    Some(Err(e)) => {
                        let status = ApiError::Expired(format!("the watch fell behind: {e}")).to_status();
                        let _ = tx.send(Ok(line_bytes("ERROR", &status.to_string()))).await;
                        return;
                    }
                    Some(Ok(event)) => {
                        last_revision = event.revision;
                        let now = selectors.matches(&event.object);
                        let before = event.prev.as_deref().is_some_and(|p| selectors.matches(p));
                        let kind = match (event.kind, before, now) {
                            (EventType::Deleted, true, _) => "DELETED",
                            (EventType::Deleted, false, _) => continue,
                            (_, false, true) => "ADDED",
                            (_, true, true) => "MODIFIED",
                            (_, true, false) => "DELETED",
                            (_, false, false) => continue,
                        };
                        let cached = (encoder.repr == Representation::Object).then(|| event.object_json());
                        encoder.line(kind, &event.object, cached)
                    }
                },
            };
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// The list request a watch without a revision starts from (no paging).
fn initial_list_request(req: &ResourceRequest) -> ResourceRequest {
    let mut query = req.query.clone();
    query.limit = None;
    query.continue_token = None;
    ResourceRequest {
        resource: req.resource,
        namespace: req.namespace.clone(),
        name: None,
        subresource: None,
        verb: req.verb,
        query,
    }
}

struct Encoder {
    resource: &'static wasmpod_api::ResourceType,
    repr: Representation,
    include: table::IncludeObject,
    /// Column definitions go only with the first Table a stream sends.
    columns_sent: std::sync::atomic::AtomicBool,
}

impl Encoder {
    fn line(&self, kind: &str, obj: &Value, cached: Option<Arc<str>>) -> Bytes {
        let body = match (self.repr, cached) {
            (Representation::Object, Some(json)) => return line_bytes(kind, &json),
            (Representation::Object, None) => obj.to_string(),
            (Representation::Table, _) => {
                let first = !self
                    .columns_sent
                    .swap(true, std::sync::atomic::Ordering::Relaxed);
                table::table_for_watch_event(self.resource, obj, self.include, first).to_string()
            }
            (Representation::PartialObjectMetadata, _) => partial_metadata(obj).to_string(),
        };
        line_bytes(kind, &body)
    }

    fn bookmark(&self, revision: i64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({ "resourceVersion": revision.to_string() });
        if initial_events_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let obj = json!({
            "kind": self.resource.kind,
            "apiVersion": self.resource.api_version(),
            "metadata": metadata,
        });
        line_bytes("BOOKMARK", &obj.to_string())
    }
}

fn line_bytes(kind: &str, object_json: &str) -> Bytes {
    let mut s = String::with_capacity(object_json.len() + 32);
    s.push_str("{\"type\":\"");
    s.push_str(kind);
    s.push_str("\",\"object\":");
    s.push_str(object_json);
    s.push_str("}\n");
    Bytes::from(s)
}
