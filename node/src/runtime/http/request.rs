//! One HTTP request to a component: a fresh store and instance with the
//! container's limits, the guest's `incoming-handler.handle` run as a task
//! of its own (so that it can stream the body after the response head),
//! and the answer the client gets when the guest fails to give one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use wasmtime::Store;
use wasmtime_wasi::p2::OutputStream;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::super::engine::error_chain;
use super::super::error::{RuntimeError, boxed};
use super::super::instance::InstanceSpec;
use super::super::store::{self, HostState, KillSwitch, Killed, Limits, P2Wasi};
use super::super::wasi;

/// What every request to one HTTP instance shares.
pub(super) struct Handler {
    pub(super) pre: ProxyPre<HostState<P2Wasi>>,
    /// The container's spec: environment, mounts, logs, limits, network.
    pub(super) spec: InstanceSpec,
    pub(super) cpu_period: Duration,
    /// How long a request may run before it is answered `504`.
    pub(super) timeout: Duration,
    pub(super) kill: Arc<KillSwitch>,
}

/// How a request's guest task ended.
#[derive(Debug)]
enum Ended {
    /// `handle` returned (whether or not it set a response).
    Returned,
    /// The guest trapped or a host call failed.
    Failed { message: String },
    /// The guest needed more memory than the container's limit.
    OutOfMemory,
    /// The request ran past the timeout.
    TimedOut,
    /// The instance was killed.
    Killed,
}

impl Handler {
    /// Answers one request. Never fails: guest failures become error
    /// responses.
    pub(super) async fn handle(
        self: Arc<Self>,
        request: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Infallible> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        Ok(match self.run(request).await {
            Ok(response) => response,
            Err((status, reason)) => {
                tracing::debug!(%method, %path, %status, %reason, "HTTP request failed");
                self.log_stderr(&format!("{method} {path}: {reason}\n"));
                error_response(status, &reason)
            }
        })
    }

    async fn run(
        &self,
        request: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, (StatusCode, String)> {
        let internal = |what: &str, error: &dyn std::fmt::Display| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{what}: {error}"),
            )
        };
        let mut store = self
            .new_store()
            .map_err(|error| internal("preparing the instance", &error_chain(&error)))?;
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(|error| (StatusCode::BAD_REQUEST, format!("{error:#}")))?;
        let (respond, response) = tokio::sync::oneshot::channel();
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(respond)
            .map_err(|error| internal("preparing the response", &error))?;

        let pre = self.pre.clone();
        let kill = Arc::clone(&self.kill);
        let timeout = self.timeout;
        let guest = tokio::spawn(async move {
            let handled = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            };
            let result = tokio::select! {
                biased;
                () = kill.killed() => return Ended::Killed,
                result = tokio::time::timeout(timeout, handled) => result,
            };
            match result {
                Err(_) => Ended::TimedOut,
                Ok(Ok(())) => Ended::Returned,
                Ok(Err(error)) => classify(&store, &error, kill.is_killed()),
            }
        });

        match response.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the handler answered with an error: {code:?}"),
            )),
            // The guest's store, which held the sender, is gone: the task
            // ended without a response.
            Err(_) => Err(match guest.await {
                Ok(Ended::Returned) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the handler returned without setting a response".to_owned(),
                ),
                Ok(Ended::Failed { message }) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the handler trapped: {message}"),
                ),
                Ok(Ended::OutOfMemory) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the handler ran out of memory (OOMKilled)".to_owned(),
                ),
                Ok(Ended::TimedOut) => (
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("the handler ran longer than {timeout:?}"),
                ),
                Ok(Ended::Killed) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the container is stopping".to_owned(),
                ),
                Err(error) => internal("the request's task failed", &error),
            }),
        }
    }

    /// A store for one request, with the container's WASI context and
    /// limits.
    fn new_store(&self) -> Result<Store<HostState<P2Wasi>>, RuntimeError> {
        let builder = wasi::context(&self.spec)?;
        let limits = Limits {
            memory_bytes: self.spec.memory_limit_bytes,
            cpu_millicores: self.spec.cpu_limit_millicores,
            cpu_period: self.cpu_period,
        };
        let state = HostState::new(
            wasi::p2_state(builder, &self.spec),
            &limits,
            Arc::clone(&self.kill),
        );
        Ok(store::new_store(self.pre.engine(), state))
    }

    /// The mean time to create a request's store and instance and drop
    /// them again, over `count` rounds: what each request costs before the
    /// guest's handler runs.
    pub(super) async fn mean_instantiation(&self, count: u32) -> Result<Duration, RuntimeError> {
        let count = count.max(1);
        let began = std::time::Instant::now();
        for _ in 0..count {
            let mut store = self.new_store()?;
            self.pre
                .instantiate_async(&mut store)
                .await
                .map_err(|error| RuntimeError::Instantiate {
                    source: boxed(error),
                })?;
        }
        Ok(began.elapsed() / count)
    }

    /// Writes a line of the node's own to the container's stderr log.
    fn log_stderr(&self, line: &str) {
        if let Some(stderr) = &self.spec.stderr {
            // Log streams write straight to their file and never fail.
            let _ = stderr
                .clone()
                .write(Bytes::copy_from_slice(line.as_bytes()));
        }
    }
}

/// Tells why a request's guest failed.
fn classify(store: &Store<HostState<P2Wasi>>, error: &wasmtime::Error, killed: bool) -> Ended {
    if killed || error.downcast_ref::<Killed>().is_some() {
        return Ended::Killed;
    }
    if store.data().memory.exceeded() {
        return Ended::OutOfMemory;
    }
    Ended::Failed {
        message: format!("{error:#}"),
    }
}

/// A plain-text error response the node gives in the guest's place.
fn error_response(status: StatusCode, reason: &str) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(format!("{status}: {reason}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn error_responses_carry_the_status_and_reason() {
        let response = error_response(StatusCode::GATEWAY_TIMEOUT, "too slow");
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], b"504 Gateway Timeout: too slow\n");
    }
}
