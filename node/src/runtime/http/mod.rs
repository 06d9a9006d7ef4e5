//! `wasi:http` for preview 2 components, both ways, over the pod's virtual
//! network.
//!
//! - Served: a component that exports `wasi:http/incoming-handler` (and not
//!   `wasi:cli/run`) is an HTTP service. Its instance listens on the
//!   spec's ports of the pod network ([`DEFAULT_PORT`] when none is given),
//!   speaks HTTP/1.1 with keep-alive, and handles every request in a fresh
//!   store and instance of the pre-instantiated component (`serve.rs`,
//!   `request.rs`), as `wasmtime serve` does. A request that traps is
//!   answered `500`, one that runs past the runtime's request timeout
//!   `504`; the service keeps serving either way, until it is killed.
//! - Outgoing: `wasi:http/outgoing-handler` requests of any component
//!   (services and commands) resolve their host with the pod's resolver and
//!   connect through the pod network (`outgoing.rs`), so a component reaches
//!   a Service by name. Only `http` is supported: the node adds no TLS.

mod outgoing;
mod request;
mod serve;

use wasmtime::component::{InstancePre, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::store::{HostState, P2Wasi};
use crate::network::PodNetwork;

pub(crate) use serve::start;

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use super::error::RuntimeError;
use super::instance::InstanceSpec;
use super::store::KillSwitch;

/// See [`Runtime::mean_http_instantiation`](super::Runtime::mean_http_instantiation).
pub(crate) async fn mean_instantiation(
    shared: &Shared,
    pre: &ProxyPre<HostState<P2Wasi>>,
    count: u32,
) -> Result<Duration, RuntimeError> {
    let handler = request::Handler {
        pre: pre.clone(),
        spec: InstanceSpec::default(),
        cpu_period: shared.cpu_period,
        timeout: shared.http_request_timeout,
        kill: Arc::new(KillSwitch::default()),
    };
    handler.mean_instantiation(count).await
}

/// The port an HTTP component is served on when its container declares
/// none.
pub const DEFAULT_PORT: u16 = 8080;

/// The `wasi:http` part of a preview 2 component's state.
pub(crate) struct HttpState {
    ctx: WasiHttpCtx,
    hooks: outgoing::PodHooks,
}

impl HttpState {
    /// Outgoing requests go through `network`; without one they are denied.
    pub(crate) fn new(network: Option<PodNetwork>) -> HttpState {
        HttpState {
            ctx: WasiHttpCtx::new(),
            hooks: outgoing::PodHooks::new(network),
        }
    }
}

impl WasiHttpView for HostState<P2Wasi> {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let P2Wasi { table, http, .. } = &mut self.wasi;
        WasiHttpCtxView {
            ctx: &mut http.ctx,
            table,
            hooks: &mut http.hooks,
        }
    }
}

/// Adds `wasi:http/types` and `wasi:http/outgoing-handler` to the linker of
/// preview 2 components (the rest of WASI is linked by the caller).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState<P2Wasi>>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

/// The component as an HTTP handler, if it exports
/// `wasi:http/incoming-handler`.
pub(crate) fn handler(pre: InstancePre<HostState<P2Wasi>>) -> Option<ProxyPre<HostState<P2Wasi>>> {
    ProxyPre::new(pre).ok()
}
