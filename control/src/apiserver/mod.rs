//! The Kubernetes-compatible HTTP API: discovery, OpenAPI, and CRUD + watch
//! for every kind of the registry, over the store. The only door to state.

pub mod admission;
pub mod body;
pub mod default_tolerations;
pub mod delete;
pub mod discovery;
pub mod list;
pub mod list_snapshot;
pub mod namespace_finalizer;
pub mod objects;
pub mod openapi;
pub mod pod_logs;
pub mod protobuf;
pub mod request;
pub mod response;
pub mod subresources;
pub mod table;
pub mod watch;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use serde_json::Value;
use tracing::Instrument;
use wasmpod_api::ApiError;

use crate::auth;
use crate::store::Store;
use request::{ResourceRequest, SubresourceName, Verb};
use response::{ErrorResponse, bytes_response, json_response};

/// Shared state of every request handler.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    inner: Arc<Inner>,
    /// tolerationSeconds of the default not-ready/unreachable tolerations.
    default_toleration_seconds: i64,
}

struct Inner {
    /// Wakes the namespace finalizer when a namespace starts terminating.
    namespace_deleted: tokio::sync::mpsc::UnboundedSender<String>,
    /// Reaches the nodes' log endpoints.
    http: reqwest::Client,
}

impl ApiState {
    pub fn new(
        store: Store,
        namespace_deleted: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Self {
        Self {
            store,
            inner: Arc::new(Inner {
                namespace_deleted,
                http: node_client(),
            }),
            default_toleration_seconds: default_tolerations::KUBERNETES_DEFAULT_SECONDS,
        }
    }

    /// Sets the tolerationSeconds of the tolerations new pods get.
    pub fn with_default_toleration_seconds(mut self, seconds: i64) -> Self {
        self.default_toleration_seconds = seconds;
        self
    }

    pub fn default_toleration_seconds(&self) -> i64 {
        self.default_toleration_seconds
    }

    /// The HTTP client for requests the API server makes to nodes.
    pub(crate) fn http_client(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn namespace_terminating(&self, name: &str) {
        // The finalizer also scans for terminating namespaces at start, so a
        // closed channel during shutdown loses nothing.
        let _ = self.inner.namespace_deleted.send(name.to_string());
    }
}

/// The client for nodes: a node that does not accept a connection soon is
/// reported unreachable; a followed log may stream for as long as it lasts.
fn node_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap_or_default()
}

/// The API's routes. Authentication and authorization wrap all of them.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/version", get(|| async { json(discovery::version()) }))
        .route("/api", get(|| async { json(discovery::api_versions()) }))
        .route("/apis", get(|| async { json(discovery::api_group_list()) }))
        .route(
            "/api/{version}",
            get(|Path(v): Path<String>| async move { found(discovery::resource_list("", &v)) }),
        )
        .route(
            "/apis/{group}",
            get(|Path(g): Path<String>| async move { found(discovery::api_group(&g)) }),
        )
        .route(
            "/apis/{group}/{version}",
            get(|Path((g, v)): Path<(String, String)>| async move {
                found(discovery::resource_list(&g, &v))
            }),
        )
        .route("/openapi/v3", get(|| async { json(openapi::index()) }))
        .route("/openapi/v3/{*path}", get(openapi_document))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(crate::modules::routes())
        .fallback(resource)
        .layer(axum::middleware::from_fn(auth::authenticate))
        .with_state(state)
}

fn json(v: Value) -> Response {
    json_response(StatusCode::OK, &v)
}

fn found(v: Option<Value>) -> Response {
    match v {
        Some(v) => json(v),
        None => ErrorResponse(ApiError::NotFound {
            target: Default::default(),
            message: "the server could not find the requested resource".into(),
        })
        .into_response(),
    }
}

async fn openapi_document(Path(path): Path<String>) -> Response {
    match openapi::document(&path) {
        Some(doc) => bytes_response(StatusCode::OK, Body::from((*doc).clone())),
        None => found(None),
    }
}

async fn readyz(State(state): State<ApiState>) -> Response {
    match state
        .store
        .get(&crate::store::Key::new("namespaces", "", "default"))
        .await
    {
        Ok(_) => "ok".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")).into_response(),
    }
}

/// Every `/api/...` and `/apis/...` resource request.
async fn resource(State(state): State<ApiState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let req = match request::parse(&parts.method, parts.uri.path(), parts.uri.query()) {
        Ok(Some(r)) => r,
        Ok(None) => return found(None),
        Err(e) => return ErrorResponse(e).into_response(),
    };
    let span = tracing::debug_span!("request", verb = ?req.verb, resource = req.resource.plural, name = ?req.name);
    match dispatch(&state, req, &parts.headers, body)
        .instrument(span)
        .await
    {
        Ok(resp) => resp,
        Err(e) => ErrorResponse(e).into_response(),
    }
}

async fn dispatch(
    state: &ApiState,
    req: ResourceRequest,
    headers: &http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    match (req.subresource, req.verb) {
        (None, Verb::Get) => objects::get(state, &req, headers).await,
        (None, Verb::List) => list::list(state, &req, headers).await,
        (None, Verb::Watch) => watch::watch(state, &req, headers).await,
        (None, Verb::Create) => objects::create(state, &req, headers, body).await,
        (None, Verb::Update) => objects::update(state, &req, headers, body).await,
        (None, Verb::Patch) => objects::patch(state, &req, headers, body).await,
        (None, Verb::Delete) => delete::delete(state, &req, body).await,
        (None, Verb::DeleteCollection) => delete::delete_collection(state, &req, body).await,
        (Some(SubresourceName::Stored(sub)), verb) => {
            subresources::handle(state, &req, sub, verb, headers, body).await
        }
        (Some(SubresourceName::Log), Verb::Get) => pod_logs::logs(state, &req).await,
        (Some(SubresourceName::Log), verb) => Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow {verb:?} on pods/log"
        ))),
    }
}
