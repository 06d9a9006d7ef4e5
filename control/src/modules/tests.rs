//! The module store's HTTP API through the router, without a port.

use axum::Router;
use axum::body::{Body, to_bytes};
use http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use crate::apiserver::{self, ApiState};
use crate::store::{Store, StoreOptions};

/// The smallest core module: magic and version.
const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";
/// The header of a component (layer 1).
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

struct Api {
    router: Router,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn api() -> anyhow::Result<Api> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = Store::open(&url, StoreOptions::default()).await?;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let router = apiserver::router(ApiState::new(store.clone(), tx));
    Ok(Api {
        router,
        store,
        _dir: dir,
    })
}

struct Answer {
    status: StatusCode,
    content_type: String,
    content_length: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    #[track_caller]
    fn expect_status(&self, code: u16, reason: &str) -> String {
        let status = self.json();
        assert_eq!(self.status.as_u16(), code, "{status}");
        assert_eq!(status["kind"], "Status", "{status}");
        assert_eq!(status["reason"], reason, "{status}");
        status["message"].as_str().unwrap_or_default().to_string()
    }
}

impl Api {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        let request = request.body(Body::from(body)).expect("a request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
        let content_length = header(header::CONTENT_LENGTH);
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body")
            .to_vec();
        Answer {
            status,
            content_type,
            content_length,
            body,
        }
    }

    async fn push(&self, query: &str, bytes: &[u8]) -> Answer {
        self.send(
            Method::POST,
            &format!("/wasmpod/v1/modules{query}"),
            Some("application/wasm"),
            bytes.to_vec(),
        )
        .await
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send(Method::GET, uri, None, Vec::new()).await
    }
}

fn module(extra: &[u8]) -> Vec<u8> {
    let mut bytes = EMPTY_MODULE.to_vec();
    // A custom section (id 0) makes modules with distinct digests.
    bytes.push(0);
    bytes.push(u8::try_from(extra.len() + 1).expect("a short section"));
    bytes.push(0);
    bytes.extend_from_slice(extra);
    bytes
}

#[tokio::test]
async fn a_pushed_module_is_served_by_digest_and_tag() -> anyhow::Result<()> {
    let api = api().await?;
    let bytes = module(b"one");
    let pushed = api.push("?tag=app:v1", &bytes).await;
    assert_eq!(pushed.status, StatusCode::CREATED);
    let answer = pushed.json();
    let digest = answer["digest"].as_str().unwrap_or_default().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{answer}"
    );
    assert_eq!(answer["size"], bytes.len());
    assert_eq!(answer["reference"], format!("app:v1@{digest}"));

    let got = api.get(&format!("/wasmpod/v1/modules/{digest}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.content_type, "application/wasm");
    assert_eq!(got.body, bytes);

    let head = api
        .send(
            Method::HEAD,
            &format!("/wasmpod/v1/modules/{digest}"),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.content_length, Some(bytes.len().to_string()));
    assert!(head.body.is_empty());

    let tag = api.get("/wasmpod/v1/tags/app:v1").await;
    assert_eq!(tag.status, StatusCode::OK);
    assert_eq!(tag.json()["name"], "app:v1");
    assert_eq!(tag.json()["digest"], digest.as_str());
    api.store.close().await;
    Ok(())
}

#[tokio::test]
async fn pushing_again_is_idempotent_and_moves_the_tag() -> anyhow::Result<()> {
    let api = api().await?;
    let first = module(b"first");
    let second = module(b"second");
    assert_eq!(
        api.push("?tag=app", &first).await.status,
        StatusCode::CREATED
    );
    let again = api.push("", &first).await;
    assert_eq!(again.status, StatusCode::OK);
    let first_digest = again.json()["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(again.json()["reference"], first_digest.as_str());

    let moved = api.push("?tag=app:latest", &second).await;
    assert_eq!(moved.status, StatusCode::CREATED);
    let second_digest = moved.json()["digest"].clone();
    let tag = api.get("/wasmpod/v1/tags/app").await;
    assert_eq!(tag.json()["name"], "app:latest");
    assert_eq!(tag.json()["digest"], second_digest);

    api.push("?tag=team/other:v2", EMPTY_COMPONENT).await;
    let list = api.get("/wasmpod/v1/tags").await;
    assert_eq!(list.status, StatusCode::OK);
    let listed = list.json();
    let names: Vec<&str> = listed["tags"]
        .as_array()
        .map(|tags| tags.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["app:latest", "team/other:v2"], "{listed}");
    api.store.close().await;
    Ok(())
}

#[tokio::test]
async fn bad_pushes_get_a_status_naming_the_problem() -> anyhow::Result<()> {
    let api = api().await?;
    let message = api
        .push("", b"hello world")
        .await
        .expect_status(400, "BadRequest");
    assert!(message.contains("not a WebAssembly module"), "{message}");
    api.push("", b"\0asm")
        .await
        .expect_status(400, "BadRequest");
    let message = api
        .push("?tag=App:v1", EMPTY_MODULE)
        .await
        .expect_status(400, "BadRequest");
    assert!(
        message.contains("tag") && message.contains("App"),
        "{message}"
    );
    api.push("?tag=app:-v1", EMPTY_MODULE)
        .await
        .expect_status(400, "BadRequest");
    api.send(
        Method::POST,
        "/wasmpod/v1/modules",
        Some("application/json"),
        EMPTY_MODULE.to_vec(),
    )
    .await
    .expect_status(415, "UnsupportedMediaType");
    // Nothing was stored by the rejected pushes.
    assert!(api.store.module_tags().await?.is_empty());
    api.store.close().await;
    Ok(())
}

#[tokio::test]
async fn an_announced_body_over_the_limit_is_413() -> anyhow::Result<()> {
    let api = api().await?;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/wasmpod/v1/modules")
        .header(
            header::CONTENT_LENGTH,
            (super::MAX_MODULE_BYTES + 1).to_string(),
        )
        .body(Body::from(EMPTY_MODULE.to_vec()))?;
    let response = api.router.clone().oneshot(request).await?;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    api.store.close().await;
    Ok(())
}

#[tokio::test]
async fn unknown_modules_and_tags_are_404_and_bad_names_400() -> anyhow::Result<()> {
    let api = api().await?;
    let unknown = format!("sha256:{}", "0".repeat(64));
    api.get(&format!("/wasmpod/v1/modules/{unknown}"))
        .await
        .expect_status(404, "NotFound");
    let head = api
        .send(
            Method::HEAD,
            &format!("/wasmpod/v1/modules/{unknown}"),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    api.get("/wasmpod/v1/modules/sha256:abc")
        .await
        .expect_status(400, "BadRequest");
    api.get("/wasmpod/v1/tags/app:v9")
        .await
        .expect_status(404, "NotFound");
    api.get("/wasmpod/v1/tags/Bad:v1")
        .await
        .expect_status(400, "BadRequest");
    api.send(Method::DELETE, "/wasmpod/v1/tags/app:v1", None, Vec::new())
        .await
        .expect_status(405, "MethodNotAllowed");
    api.store.close().await;
    Ok(())
}

#[test]
fn only_wasm_headers_pass() {
    assert!(super::check_wasm(EMPTY_MODULE).is_ok());
    assert!(super::check_wasm(EMPTY_COMPONENT).is_ok());
    assert!(super::check_wasm(b"\0asm\x01\0\x02\0").is_err());
    assert!(super::check_wasm(b"\x7fELF\x02\x01\x01\0").is_err());
    assert!(super::check_wasm(b"").is_err());
}
