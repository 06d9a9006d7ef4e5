//! The running instance of an HTTP component: listeners on its ports of the
//! pod network, one task per connection speaking HTTP/1.1 (keep-alive),
//! and the instance status, which stays "running" until the kill switch
//! ends everything.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use tokio::sync::watch;
use wasmtime_wasi::p2::OutputStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::DEFAULT_PORT;
use super::request::Handler;
use crate::network::{VirtualListener, VirtualStream};
use crate::runtime::Shared;
use crate::runtime::instance::{ExitStatus, InstanceSpec};
use crate::runtime::store::{HostState, KillSwitch, P2Wasi};

/// How many connections may wait to be accepted on each port.
const BACKLOG: usize = 1024;

/// Starts serving `pre` as the instance `kill` and `report` belong to. A
/// service that cannot listen (no pod network, a port already bound in the
/// pod) ends at once with exit code 1 and says why on its stderr, as a
/// server process would.
pub(crate) fn start(
    shared: Arc<Shared>,
    pre: ProxyPre<HostState<P2Wasi>>,
    spec: InstanceSpec,
    kill: Arc<KillSwitch>,
    report: watch::Sender<Option<ExitStatus>>,
) {
    let listeners = match listen(&spec) {
        Ok(listeners) => listeners,
        Err(reason) => {
            tracing::info!(%reason, "HTTP component cannot serve");
            if let Some(stderr) = &spec.stderr {
                // Log streams write straight to their file and never fail.
                let _ = stderr.clone().write(Bytes::from(format!("{reason}\n")));
            }
            report.send_replace(Some(ExitStatus::Exit { code: 1 }));
            return;
        }
    };
    let handler = Arc::new(Handler {
        pre,
        cpu_period: shared.cpu_period,
        timeout: shared.http_request_timeout,
        kill: Arc::clone(&kill),
        spec,
    });
    for listener in listeners {
        tracing::debug!(addr = %listener.local_addr(), "serving HTTP component");
        tokio::spawn(accept_loop(listener, Arc::clone(&handler)));
    }
    tokio::spawn(async move {
        kill.killed().await;
        report.send_replace(Some(ExitStatus::Killed));
        // In-flight requests hold the handler (and with it the engine);
        // the runtime goes last.
        drop(shared);
    });
}

/// Binds every port of the spec on all of the pod's addresses.
fn listen(spec: &InstanceSpec) -> Result<Vec<VirtualListener>, String> {
    let network = spec
        .network
        .as_ref()
        .ok_or("cannot serve HTTP: the pod has no network")?;
    let ports = if spec.ports.is_empty() {
        vec![DEFAULT_PORT]
    } else {
        spec.ports.clone()
    };
    ports
        .into_iter()
        .map(|port| {
            let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
            network
                .listen(addr, BACKLOG)
                .map_err(|error| format!("cannot serve HTTP on port {port}: {error}"))
        })
        .collect()
}

/// Accepts connections on one port until the instance is killed.
async fn accept_loop(mut listener: VirtualListener, handler: Arc<Handler>) {
    let kill = Arc::clone(&handler.kill);
    loop {
        let accepted = tokio::select! {
            biased;
            () = kill.killed() => return,
            accepted = listener.accept() => accepted,
        };
        let Some(accepted) = accepted else {
            // The pod's network is gone.
            return;
        };
        tokio::spawn(connection(accepted.stream, Arc::clone(&handler)));
    }
}

/// Serves the requests of one connection, one after the other.
async fn connection(stream: VirtualStream, handler: Arc<Handler>) {
    let kill = Arc::clone(&handler.kill);
    let service = service_fn(move |request| Arc::clone(&handler).handle(request));
    let serving = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        biased;
        () = kill.killed() => {}
        served = serving => {
            if let Err(error) = served {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        }
    }
}
