//! Where modules are downloaded from: the control plane's module store
//! (over the API, with the node's credentials) and plain `https://` or
//! `http://` URLs. Both cap the size and the time of a download.

use std::time::Duration;

use futures::future::BoxFuture;
use wasmpod_api::module_ref::{MODULES_PATH, TAGS_PATH, TagRef};

use crate::agent::client::ApiClient;

/// The largest module a node downloads (the module store's push limit).
pub const MAX_MODULE_BYTES: usize = 256 * 1024 * 1024;

/// How long a URL download may take in all, and to connect.
const URL_TIMEOUT: Duration = Duration::from_secs(300);
const URL_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed download.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The source answered that it has no such tag or module.
    #[error("{0}")]
    NotFound(String),
    /// Anything else: the network, the server, a size over the cap.
    #[error("{0}")]
    Failed(String),
}

/// The control plane's module store as the node sees it. `ApiClient`
/// implements it; tests use a fake.
pub trait ModuleStore: Send + Sync + 'static {
    /// The digest `tag` points at now.
    fn resolve_tag<'a>(&'a self, tag: &'a TagRef) -> BoxFuture<'a, Result<String, FetchError>>;

    /// The bytes stored under `digest` (not yet verified).
    fn fetch_blob<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>>;
}

impl ModuleStore for ApiClient {
    fn resolve_tag<'a>(&'a self, tag: &'a TagRef) -> BoxFuture<'a, Result<String, FetchError>> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct Tag {
                digest: String,
            }
            let path = format!("{TAGS_PATH}/{tag}");
            let body = self
                .get_bytes(&path, 64 * 1024)
                .await
                .map_err(|e| client_error(tag.to_string(), &e))?;
            let answer: Tag = serde_json::from_slice(&body)
                .map_err(|e| FetchError::Failed(format!("GET {path}: undecodable answer: {e}")))?;
            Ok(answer.digest)
        })
    }

    fn fetch_blob<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(async move {
            self.get_bytes(&format!("{MODULES_PATH}/{digest}"), MAX_MODULE_BYTES)
                .await
                .map_err(|e| client_error(digest.to_string(), &e))
        })
    }
}

fn client_error(what: String, e: &crate::agent::client::ClientError) -> FetchError {
    if e.is_not_found() {
        FetchError::NotFound(format!("{what} is not in the module store"))
    } else {
        FetchError::Failed(crate::agent::error_chain(e))
    }
}

/// Downloads of `https://` and `http://` modules.
#[derive(Debug, Clone)]
pub struct UrlSource {
    http: reqwest::Client,
    max_bytes: usize,
}

impl UrlSource {
    pub fn new() -> Result<UrlSource, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(URL_CONNECT_TIMEOUT)
            .timeout(URL_TIMEOUT)
            .build()?;
        Ok(UrlSource {
            http,
            max_bytes: MAX_MODULE_BYTES,
        })
    }

    /// The same source with another size cap.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> UrlSource {
        self.max_bytes = max_bytes;
        self
    }

    /// The body of `url`, if the server answers 2xx within the caps.
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let failed = |e: reqwest::Error| FetchError::Failed(crate::agent::error_chain(&e));
        let mut response = self.http.get(url).send().await.map_err(failed)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(FetchError::NotFound(format!(
                "the server answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(FetchError::Failed(format!("the server answered {status}")));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(self.too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(self.too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn too_large(&self) -> FetchError {
        FetchError::Failed(format!(
            "the module is larger than the limit of {} bytes",
            self.max_bytes
        ))
    }
}
