//! The node's log endpoint, which the API server proxies `kubectl logs` to:
//! `GET /containerLogs/{namespace}/{pod}/{container}?podUID=..&follow=..`
//! answers with the container attempt's output as text, read from
//! `<data dir>/pods/<podUID>/logs/<container>/` (the current attempt is the
//! highest number, `previous` the one before it). With `follow`, new output
//! is streamed until the attempt's log has no writer left ([`LogWriters`]),
//! then the rest is read and the response ends. Errors are Kubernetes
//! `Status` objects, with kubelet's messages.

mod options;
mod reader;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use jiff::Timestamp;
use tokio::net::TcpListener;
use wasmpod_api::ApiError;

use super::pods::log_path;
use crate::runtime::log_format::Line;
pub use options::LogOptions;
use reader::{LogReader, Output};

/// Tells whether a container attempt's log file still has a writer, that is
/// whether the attempt may still add to it.
pub trait LogWriters: Send + Sync + 'static {
    /// `path` is the attempt's log file, as [`log_path`] names it.
    fn is_writing(&self, path: &Path) -> bool;
}

/// No log file has a writer (a runtime that keeps no logs, or tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoWriters;

impl LogWriters for NoWriters {
    fn is_writing(&self, _path: &Path) -> bool {
        false
    }
}

/// How often a followed log is checked for new output.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The log endpoint of one node. Cheap to clone.
#[derive(Clone)]
pub struct LogServer {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    writers: Arc<dyn LogWriters>,
    poll_interval: Duration,
}

impl LogServer {
    /// Serves the logs under `<data_dir>/pods`.
    pub fn new(data_dir: PathBuf, writers: Arc<dyn LogWriters>) -> LogServer {
        Self::with_poll_interval(data_dir, writers, DEFAULT_POLL_INTERVAL)
    }

    /// Like [`new`](LogServer::new), checking followed logs every `interval`.
    pub fn with_poll_interval(
        data_dir: PathBuf,
        writers: Arc<dyn LogWriters>,
        interval: Duration,
    ) -> LogServer {
        LogServer {
            inner: Arc::new(Inner {
                data_dir,
                writers,
                poll_interval: interval,
            }),
        }
    }

    /// The endpoint's routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/containerLogs/{namespace}/{pod}/{container}",
                get(container_logs),
            )
            .with_state(self.clone())
    }

    /// Serves the endpoint on `listener` until the future is dropped.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let addr = listener.local_addr().ok();
        tracing::info!(addr = ?addr, "node log endpoint listening");
        axum::serve(listener, self.router()).await
    }
}

/// Binds the log endpoint's listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

async fn container_logs(
    State(server): State<LogServer>,
    path: Result<UrlPath<(String, String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    match respond(&server, path, query).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

async fn respond(
    server: &LogServer,
    path: Result<UrlPath<(String, String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let UrlPath((_namespace, pod, container)) =
        path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    options::check_path_segment("container", &container).map_err(ApiError::BadRequest)?;
    let options = LogOptions::parse(&query, Timestamp::now()).map_err(ApiError::BadRequest)?;
    let data_dir = server.inner.data_dir.clone();
    let file = {
        let (uid, name) = (options.pod_uid.clone(), container.clone());
        let previous = options.previous;
        blocking(move || {
            let dir = log_path(&data_dir, &uid, &name, 0)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let attempts = reader::attempts(&dir)?;
            let chosen = if previous {
                attempts.iter().rev().nth(1)
            } else {
                attempts.last()
            };
            Ok(chosen.map(|&attempt| log_path(&data_dir, &uid, &name, attempt)))
        })
        .await?
    };
    let Some(file) = file else {
        return Err(ApiError::BadRequest(if options.previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
            )
        }));
    };
    // The writer is asked before the file is read: a log without a writer
    // is complete once read.
    let writing = options.follow && server.inner.writers.is_writing(&file);
    let (mut log, mut lines) = blocking(move || LogReader::open(file)).await?;
    let mut output = Output::new(options.timestamps, options.since, options.limit_bytes);
    let mut first = Vec::new();
    if !writing {
        log.finish(&mut lines);
    }
    let lines = reader::tail(lines, options.tail_lines);
    output.render(&lines, &mut first);
    if !options.follow || output.exhausted() {
        return Ok(text_response(Body::from(first)));
    }
    let follow = Follow {
        log: Some(log),
        output,
        writers: Arc::clone(&server.inner.writers),
        interval: server.inner.poll_interval,
        first: Some(first),
        ended: !writing,
    };
    Ok(text_response(Body::from_stream(follow.into_stream())))
}

/// The state of a followed log between two chunks of the response.
struct Follow {
    /// Taken while a blocking read runs.
    log: Option<LogReader>,
    output: Output,
    writers: Arc<dyn LogWriters>,
    interval: Duration,
    /// The output read when the request came, sent first.
    first: Option<Vec<u8>>,
    /// The log had no writer when last asked and has been read to its end.
    ended: bool,
}

impl Follow {
    fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures::stream::unfold(self, |mut follow| async move {
            match follow.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), follow)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "following a container log");
                    follow.ended = true;
                    follow.log = None;
                    Some((Err(e), follow))
                }
            }
        })
    }

    /// The next non-empty piece of output, or `None` at the end.
    async fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if let Some(first) = self.first.take().filter(|f| !f.is_empty()) {
            return Ok(Some(first));
        }
        loop {
            if self.ended || self.output.exhausted() {
                return Ok(None);
            }
            let Some(mut log) = self.log.take() else {
                return Ok(None);
            };
            let writing = self.writers.is_writing(log.path());
            let (log, lines, read) = tokio::task::spawn_blocking(move || {
                let mut lines = Vec::new();
                let read = log.read_new(&mut lines);
                (log, lines, read)
            })
            .await
            .map_err(std::io::Error::other)?;
            let mut lines: Vec<Line> = lines;
            let read = read?;
            self.log = Some(log);
            if !read && !writing {
                // Nothing new, and nobody writes any more: the attempt ended.
                if let Some(log) = &mut self.log {
                    log.finish(&mut lines);
                }
                self.ended = true;
            }
            let mut chunk = Vec::new();
            self.output.render(&lines, &mut chunk);
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
            if !read && !self.ended {
                tokio::time::sleep(self.interval).await;
            }
        }
    }
}

/// Runs file work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("reading the log: {e}")))?
        .map_err(|e| ApiError::Internal(format!("reading the log: {e}")))
}

fn text_response(body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn error_response(error: &ApiError) -> Response {
    let code = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code.is_server_error() {
        tracing::warn!(%error, "container log request failed");
    }
    let body = serde_json::to_vec(&error.to_status()).unwrap_or_default();
    let mut response = (code, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
