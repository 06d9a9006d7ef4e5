//! Watching a kind the way Kubernetes clients do: list, then watch from the
//! list's resourceVersion, resume from the last version seen when a watch
//! ends or breaks, and list again when the server answers 410 Gone.

use std::marker::PhantomData;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ListableResource, Metadata};
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::{ApiClient, ClientError, ListParams, api_error, object_path};

/// Each watch request asks the server to end it after about this long, so
/// connections are renewed even when nothing changes.
const WATCH_TIMEOUT: Duration = Duration::from_secs(290);
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What changed, for a consumer that keeps a copy of the watched set.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<K> {
    /// The complete current set (after the first list or a re-list):
    /// anything the consumer holds that is not in it is gone.
    Restarted(Vec<K>),
    /// An object was added or modified.
    Applied(K),
    /// An object was deleted.
    Deleted(K),
}

/// One line of a watch response.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent<K> {
    Added(K),
    Modified(K),
    Deleted(K),
    Bookmark {
        resource_version: String,
    },
    /// The server ended the watch with an error `Status`.
    Error {
        code: u16,
        reason: String,
        message: String,
    },
}

impl<K: DeserializeOwned> WatchEvent<K> {
    /// Decodes one line of a watch response.
    pub fn parse(line: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Line {
            #[serde(rename = "type")]
            kind: String,
            object: serde_json::Value,
        }
        let line: Line = serde_json::from_slice(line)?;
        let object = || serde_json::from_value::<K>(line.object.clone());
        Ok(match line.kind.as_str() {
            "ADDED" => Self::Added(object()?),
            "MODIFIED" => Self::Modified(object()?),
            "DELETED" => Self::Deleted(object()?),
            "BOOKMARK" => Self::Bookmark {
                resource_version: line
                    .object
                    .pointer("/metadata/resourceVersion")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
            _ => {
                let field = |name: &str| {
                    line.object
                        .get(name)
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                Self::Error {
                    code: line
                        .object
                        .get("code")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|c| u16::try_from(c).ok())
                        .unwrap_or(500),
                    reason: field("reason"),
                    message: field("message"),
                }
            }
        })
    }
}

enum State {
    /// Must list to learn the current set and version.
    Relist,
    /// Must open a watch from this version.
    Resume(String),
    /// Reading a watch response.
    Watching {
        resource_version: String,
        response: reqwest::Response,
        buffer: Vec<u8>,
    },
}

/// A resumable watch over one kind; see the module documentation.
pub struct Watcher<K> {
    client: ApiClient,
    namespace: Option<String>,
    params: ListParams,
    state: State,
    /// The pause before the next request after a failure.
    retry: Option<Duration>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Watcher<K>
where
    K: ListableResource + Metadata<Ty = ObjectMeta> + DeserializeOwned,
{
    pub(super) fn new(client: ApiClient, namespace: Option<String>, params: ListParams) -> Self {
        Self {
            client,
            namespace,
            params,
            state: State::Relist,
            retry: None,
            kind: PhantomData,
        }
    }

    /// The next change. Errors are reported as they happen (the caller logs
    /// them); the watcher recovers by itself, backing off before its next
    /// request, so calling `next` again is always right.
    pub async fn next(&mut self) -> Result<Change<K>, ClientError> {
        loop {
            if let Some(pause) = self.retry {
                tokio::time::sleep(pause).await;
            }
            match self.step().await {
                Ok(Some(change)) => {
                    self.retry = None;
                    return Ok(change);
                }
                Ok(None) => {}
                Err(e) => {
                    self.retry = Some(self.retry.map_or(RETRY_FIRST, |d| (d * 2).min(RETRY_MAX)));
                    return Err(e);
                }
            }
        }
    }

    /// One transition; `Ok(None)` when there is nothing to report yet.
    async fn step(&mut self) -> Result<Option<Change<K>>, ClientError> {
        match std::mem::replace(&mut self.state, State::Relist) {
            State::Relist => {
                let list = self
                    .client
                    .list::<K>(self.namespace.as_deref(), &self.params)
                    .await?;
                self.state = State::Resume(list.metadata.resource_version.unwrap_or_default());
                Ok(Some(Change::Restarted(list.items)))
            }
            State::Resume(version) => {
                match self.open(&version).await {
                    Ok(response) => {
                        self.state = State::Watching {
                            resource_version: version,
                            response,
                            buffer: Vec::new(),
                        };
                        Ok(None)
                    }
                    // Too old: the set must be listed again.
                    Err(e) if e.is_gone() => Ok(None),
                    Err(e) => {
                        self.state = State::Resume(version);
                        Err(e)
                    }
                }
            }
            State::Watching {
                mut resource_version,
                mut response,
                mut buffer,
            } => {
                let line = match read_line(&mut response, &mut buffer).await {
                    Ok(Some(line)) => line,
                    Ok(None) => {
                        // The server ended the watch: resume where it was.
                        self.state = State::Resume(resource_version);
                        return Ok(None);
                    }
                    Err(source) => {
                        self.state = State::Resume(resource_version);
                        return Err(ClientError::Transport {
                            method: Method::GET,
                            path: object_path::<K>(self.namespace.as_deref(), None, None),
                            source,
                        });
                    }
                };
                let event = WatchEvent::<K>::parse(&line).map_err(|source| ClientError::Decode {
                    method: Method::GET,
                    path: object_path::<K>(self.namespace.as_deref(), None, None),
                    source,
                });
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        self.state = State::Resume(resource_version);
                        return Err(e);
                    }
                };
                let change = match event {
                    WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                        if let Some(v) = version_of(&obj) {
                            resource_version = v;
                        }
                        Some(Change::Applied(obj))
                    }
                    WatchEvent::Deleted(obj) => {
                        if let Some(v) = version_of(&obj) {
                            resource_version = v;
                        }
                        Some(Change::Deleted(obj))
                    }
                    WatchEvent::Bookmark {
                        resource_version: v,
                    } => {
                        if !v.is_empty() {
                            resource_version = v;
                        }
                        None
                    }
                    WatchEvent::Error {
                        code,
                        reason,
                        message,
                    } => {
                        self.state = if code == 410 {
                            State::Relist
                        } else {
                            State::Resume(resource_version)
                        };
                        if code == 410 {
                            return Ok(None);
                        }
                        return Err(ClientError::Api {
                            method: Method::GET,
                            path: object_path::<K>(self.namespace.as_deref(), None, None),
                            code,
                            reason,
                            message,
                        });
                    }
                };
                self.state = State::Watching {
                    resource_version,
                    response,
                    buffer,
                };
                Ok(change)
            }
        }
    }

    /// Opens a watch from `version`.
    async fn open(&self, version: &str) -> Result<reqwest::Response, ClientError> {
        let path = object_path::<K>(self.namespace.as_deref(), None, None);
        let mut query = self.params.query();
        query.push(("watch", "true".into()));
        query.push(("resourceVersion", version.into()));
        query.push(("allowWatchBookmarks", "true".into()));
        query.push(("timeoutSeconds", WATCH_TIMEOUT.as_secs().to_string()));
        let response = self
            .client
            .request(Method::GET, &path)
            .query(&query)
            .timeout(WATCH_TIMEOUT + Duration::from_secs(30))
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                method: Method::GET,
                path: path.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(api_error(Method::GET, path, status, &body))
    }
}

fn version_of<K: Metadata<Ty = ObjectMeta>>(obj: &K) -> Option<String> {
    obj.metadata().resource_version.clone()
}

/// The next newline-terminated line of a streamed body; `None` at its end.
async fn read_line(
    response: &mut reqwest::Response,
    buffer: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    loop {
        if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(line));
        }
        match response.chunk().await? {
            Some(chunk) => buffer.extend_from_slice(&chunk),
            None => {
                let rest = std::mem::take(buffer);
                return Ok((!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn watch_lines_decode_into_events() {
        let added = br#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","resourceVersion":"7"}}}"#;
        match WatchEvent::<Pod>::parse(added).expect("parses") {
            WatchEvent::Added(p) => assert_eq!(p.metadata.name.as_deref(), Some("p")),
            other => panic!("unexpected {other:?}"),
        }
        let bookmark = br#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#;
        assert_eq!(
            WatchEvent::<Pod>::parse(bookmark).expect("parses"),
            WatchEvent::Bookmark {
                resource_version: "12".into()
            }
        );
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}"#;
        assert!(matches!(
            WatchEvent::<Pod>::parse(gone).expect("parses"),
            WatchEvent::Error { code: 410, .. }
        ));
    }

    #[test]
    fn object_versions_are_read_from_metadata() {
        let pod: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"resourceVersion": "42"}}))
                .expect("a pod");
        assert_eq!(version_of(&pod).as_deref(), Some("42"));
    }
}
