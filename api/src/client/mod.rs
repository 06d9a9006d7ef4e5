//! A small typed client for the Kubernetes API, used by the node agent and
//! the controllers:
//! get, create, replace, patch and delete of single objects (and their
//! `status` subresource), lists, and watches with Kubernetes' resume and
//! re-list semantics. Objects are the `k8s-openapi` types.

mod watch;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
use k8s_openapi::{List, ListableResource, Metadata, Resource};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use watch::{Change, WatchEvent, Watcher};

/// How long one ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a download of raw bytes (a module) may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid API server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("could not build the HTTP client")]
    Build(#[source] reqwest::Error),
    #[error("{method} {path} failed")]
    Transport {
        method: Method,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error `Status`.
    #[error("{method} {path}: {code} {reason}: {message}")]
    Api {
        method: Method,
        path: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error("{method} {path}: undecodable response")]
    Decode {
        method: Method,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("could not encode the request body")]
    Encode(#[source] serde_json::Error),
    #[error("GET {path}: the answer is larger than {limit} bytes")]
    TooLarge { path: String, limit: usize },
}

impl ClientError {
    /// The HTTP status of an error `Status` answer.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    pub fn is_already_exists(&self) -> bool {
        self.code() == Some(409) && self.reason() == Some("AlreadyExists")
    }

    /// A conflict on an update or a failed precondition.
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409) && self.reason() != Some("AlreadyExists")
    }

    /// The requested resourceVersion is no longer in the server's window.
    pub fn is_gone(&self) -> bool {
        self.code() == Some(410)
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Self::Api { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// A patch body and the content type that says how to apply it.
#[derive(Debug, Clone)]
pub enum Patch {
    /// RFC 7386 JSON merge patch.
    Merge(serde_json::Value),
    /// RFC 6902 JSON patch (with `test` operations as preconditions).
    Json(serde_json::Value),
    /// Kubernetes strategic merge patch.
    Strategic(serde_json::Value),
}

impl Patch {
    fn content_type(&self) -> &'static str {
        match self {
            Self::Merge(_) => "application/merge-patch+json",
            Self::Json(_) => "application/json-patch+json",
            Self::Strategic(_) => "application/strategic-merge-patch+json",
        }
    }

    fn body(&self) -> &serde_json::Value {
        match self {
            Self::Merge(v) | Self::Json(v) | Self::Strategic(v) => v,
        }
    }
}

/// Selectors of a list or watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl ListParams {
    /// Objects whose `field` equals `value` (`spec.nodeName=node-1`).
    pub fn fields(selector: impl Into<String>) -> Self {
        Self {
            field_selector: Some(selector.into()),
            ..Self::default()
        }
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(s) = &self.label_selector {
            q.push(("labelSelector", s.clone()));
        }
        if let Some(s) = &self.field_selector {
            q.push(("fieldSelector", s.clone()));
        }
        q
    }
}

/// The Kubernetes API of one server, as one identity.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client of the server at `base_url` (`http://127.0.0.1:6443`),
    /// sending `token` as a bearer token when given.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::InvalidUrl {
                url: base_url.into(),
                reason: "must start with http:// or https://".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self { http, base, token })
    }

    pub async fn get<K>(&self, namespace: Option<&str>, name: &str) -> Result<K, ClientError>
    where
        K: Resource + DeserializeOwned,
    {
        let path = object_path::<K>(namespace, Some(name), None);
        self.send(Method::GET, path, |r| r).await
    }

    pub async fn list<K>(
        &self,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<List<K>, ClientError>
    where
        K: ListableResource + DeserializeOwned,
    {
        let path = object_path::<K>(namespace, None, None);
        let query = params.query();
        self.send(Method::GET, path, |r| r.query(&query)).await
    }

    pub async fn create<K>(&self, namespace: Option<&str>, obj: &K) -> Result<K, ClientError>
    where
        K: Resource + Serialize + DeserializeOwned,
    {
        let body = serde_json::to_vec(obj).map_err(ClientError::Encode)?;
        let path = object_path::<K>(namespace, None, None);
        self.send(Method::POST, path, |r| json_body(r, body)).await
    }

    /// PUT of the whole object; its resourceVersion, if set, must be current.
    pub async fn replace<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        obj: &K,
    ) -> Result<K, ClientError>
    where
        K: Resource + Serialize + DeserializeOwned,
    {
        self.put(namespace, name, None, obj).await
    }

    /// PUT of the `status` subresource: only `.status` is taken from `obj`.
    pub async fn replace_status<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        obj: &K,
    ) -> Result<K, ClientError>
    where
        K: Resource + Serialize + DeserializeOwned,
    {
        self.put(namespace, name, Some("status"), obj).await
    }

    pub async fn patch<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
    ) -> Result<K, ClientError>
    where
        K: Resource + DeserializeOwned,
    {
        self.patch_at::<K>(namespace, name, None, patch).await
    }

    /// PATCH of the `status` subresource.
    pub async fn patch_status<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
    ) -> Result<K, ClientError>
    where
        K: Resource + DeserializeOwned,
    {
        self.patch_at::<K>(namespace, name, Some("status"), patch)
            .await
    }

    /// DELETE with options (grace period, preconditions). A graceful delete
    /// leaves the object in place with a deletionTimestamp.
    pub async fn delete<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<(), ClientError>
    where
        K: Resource,
    {
        let body = serde_json::to_vec(options).map_err(ClientError::Encode)?;
        let path = object_path::<K>(namespace, Some(name), None);
        self.send::<serde_json::Value>(Method::DELETE, path, |r| json_body(r, body))
            .await
            .map(|_| ())
    }

    /// Removes an object at once, only if it is still the one with `uid`
    /// (`gracePeriodSeconds: 0` and a UID precondition): how a node removes
    /// a pod whose containers have all stopped.
    pub async fn delete_now<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        uid: &str,
    ) -> Result<(), ClientError>
    where
        K: Resource,
    {
        let options = DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.into()),
                resource_version: None,
            }),
            ..DeleteOptions::default()
        };
        self.delete::<K>(namespace, name, &options).await
    }

    /// POST to a subresource of an object that creates something, such as
    /// `pods/{name}/binding`; the answer (often a `Status`) is returned as
    /// JSON.
    pub async fn create_subresource<K, B>(
        &self,
        namespace: Option<&str>,
        name: &str,
        sub: &str,
        body: &B,
    ) -> Result<serde_json::Value, ClientError>
    where
        K: Resource,
        B: Serialize,
    {
        let body = serde_json::to_vec(body).map_err(ClientError::Encode)?;
        let path = object_path::<K>(namespace, Some(name), Some(sub));
        self.send(Method::POST, path, |r| json_body(r, body)).await
    }

    /// A [`Watcher`] over the objects `params` selects.
    pub fn watcher<K>(&self, namespace: Option<&str>, params: ListParams) -> Watcher<K>
    where
        K: ListableResource + Metadata<Ty = ObjectMeta> + DeserializeOwned,
    {
        Watcher::new(self.clone(), namespace.map(str::to_string), params)
    }

    /// GET of a path that answers raw bytes (a module of the module store),
    /// refusing an answer larger than `limit` bytes.
    pub async fn get_bytes(&self, path: &str, limit: usize) -> Result<Vec<u8>, ClientError> {
        let transport = |source| ClientError::Transport {
            method: Method::GET,
            path: path.to_string(),
            source,
        };
        let mut response = self
            .request(Method::GET, path)
            .timeout(DOWNLOAD_TIMEOUT)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.map_err(transport)?;
            return Err(api_error(Method::GET, path.to_string(), status, &body));
        }
        let too_large = || ClientError::TooLarge {
            path: path.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn put<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        sub: Option<&str>,
        obj: &K,
    ) -> Result<K, ClientError>
    where
        K: Resource + Serialize + DeserializeOwned,
    {
        let body = serde_json::to_vec(obj).map_err(ClientError::Encode)?;
        let path = object_path::<K>(namespace, Some(name), sub);
        self.send(Method::PUT, path, |r| json_body(r, body)).await
    }

    async fn patch_at<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        sub: Option<&str>,
        patch: &Patch,
    ) -> Result<K, ClientError>
    where
        K: Resource + DeserializeOwned,
    {
        let body = serde_json::to_vec(patch.body()).map_err(ClientError::Encode)?;
        let path = object_path::<K>(namespace, Some(name), sub);
        let content_type = patch.content_type();
        self.send(Method::PATCH, path, |r| {
            r.header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
        })
        .await
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::ACCEPT, "application/json");
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends one request and decodes the answer, or the error `Status`.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, ClientError> {
        let request = build(self.request(method.clone(), &path)).timeout(REQUEST_TIMEOUT);
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                method: method.clone(),
                path: path.clone(),
                source,
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                method: method.clone(),
                path: path.clone(),
                source,
            })?;
        if !status.is_success() {
            return Err(api_error(method, path, status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            method,
            path,
            source,
        })
    }
}

fn json_body(r: RequestBuilder, body: Vec<u8>) -> RequestBuilder {
    r.header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
}

/// The error a non-2xx answer stands for, from its `Status` body when it
/// has one.
fn api_error(method: Method, path: String, status: StatusCode, body: &[u8]) -> ClientError {
    #[derive(serde::Deserialize, Default)]
    struct Status {
        #[serde(default)]
        reason: String,
        #[serde(default)]
        message: String,
    }
    let parsed: Status = serde_json::from_slice(body).unwrap_or_default();
    let message = if parsed.message.is_empty() {
        String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(512)
            .collect()
    } else {
        parsed.message
    };
    ClientError::Api {
        method,
        path,
        code: status.as_u16(),
        reason: parsed.reason,
        message,
    }
}

/// `/api/v1/namespaces/{ns}/pods/{name}/status` and its relatives.
fn object_path<K: Resource>(
    namespace: Option<&str>,
    name: Option<&str>,
    sub: Option<&str>,
) -> String {
    let mut path = if K::GROUP.is_empty() {
        format!("/api/{}", K::API_VERSION)
    } else {
        format!("/apis/{}", K::API_VERSION)
    };
    if let Some(ns) = namespace {
        path.push_str("/namespaces/");
        path.push_str(ns);
    }
    path.push('/');
    path.push_str(K::URL_PATH_SEGMENT);
    if let Some(name) = name {
        path.push('/');
        path.push_str(name);
        if let Some(sub) = sub {
            path.push('/');
            path.push_str(sub);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Node, Pod};

    #[test]
    fn paths_follow_the_group_and_scope_of_the_kind() {
        assert_eq!(
            object_path::<Pod>(Some("ns"), Some("p"), Some("status")),
            "/api/v1/namespaces/ns/pods/p/status"
        );
        assert_eq!(
            object_path::<Node>(None, Some("n1"), None),
            "/api/v1/nodes/n1"
        );
        assert_eq!(
            object_path::<Lease>(Some("kube-node-lease"), None, None),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        );
    }

    #[test]
    fn error_statuses_are_classified_by_code_and_reason() {
        let status = |code: u16, reason: &str| {
            let body =
                format!(r#"{{"kind":"Status","code":{code},"reason":"{reason}","message":"m"}}"#);
            api_error(
                Method::GET,
                "/x".into(),
                StatusCode::from_u16(code).expect("a status code"),
                body.as_bytes(),
            )
        };
        assert!(status(404, "NotFound").is_not_found());
        assert!(status(409, "AlreadyExists").is_already_exists());
        assert!(!status(409, "AlreadyExists").is_conflict());
        assert!(status(409, "Conflict").is_conflict());
        assert!(status(410, "Expired").is_gone());
        let plain = api_error(
            Method::GET,
            "/x".into(),
            StatusCode::BAD_GATEWAY,
            b"upstream down",
        );
        assert!(plain.to_string().contains("upstream down"));
    }

    #[test]
    fn urls_must_be_http() {
        assert!(ApiClient::new("127.0.0.1:6443", None).is_err());
        assert!(ApiClient::new("http://127.0.0.1:6443/", None).is_ok());
    }
}
