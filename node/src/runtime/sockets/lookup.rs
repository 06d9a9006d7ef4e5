//! `ip-name-lookup` through the pod's resolver.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::SocketsView;
use super::address::ip_from_std;
use super::bindings::ip_name_lookup;
use super::bindings::network::{ErrorCode, IpAddress};
use super::error::{SocketResult, code};
use super::network::Network;
use crate::network::NetError;

type Lookup = Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, NetError>> + Send>>;

/// A lookup in progress, then its answers one by one.
pub enum ResolveAddressStream {
    Resolving(Lookup),
    Done(Result<std::vec::IntoIter<IpAddr>, ErrorCode>),
}

impl ResolveAddressStream {
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let ResolveAddressStream::Resolving(lookup) = self {
            let result = std::task::ready!(lookup.as_mut().poll(cx));
            *self = ResolveAddressStream::Done(
                result.map(Vec::into_iter).map_err(|error| code(&error)),
            );
        }
        Poll::Ready(())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ResolveAddressStream {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.poll_done(cx)).await;
    }
}

/// Whether `name` could be a host name or an IP literal at all.
fn plausible(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
}

impl ip_name_lookup::Host for SocketsView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        self.table.get(&network)?;
        let Some(pod) = self.ctx.network.clone() else {
            return Err(ErrorCode::AccessDenied.into());
        };
        if !plausible(&name) {
            return Err(ErrorCode::InvalidArgument.into());
        }
        let mut stream =
            ResolveAddressStream::Resolving(Box::pin(async move { pod.resolve(&name).await }));
        // Literals and cluster names answer at once.
        let _ = stream.poll_done(&mut Context::from_waker(Waker::noop()));
        Ok(self.table.push(stream)?)
    }
}

impl ip_name_lookup::HostResolveAddressStream for SocketsView<'_> {
    fn resolve_next_address(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> SocketResult<Option<IpAddress>> {
        let stream = self.table.get_mut(&this)?;
        if stream
            .poll_done(&mut Context::from_waker(Waker::noop()))
            .is_pending()
        {
            return Err(ErrorCode::WouldBlock.into());
        }
        match stream {
            ResolveAddressStream::Done(Ok(ips)) => Ok(ips.next().map(ip_from_std)),
            ResolveAddressStream::Done(Err(error)) => Err((*error).into()),
            ResolveAddressStream::Resolving(_) => Err(ErrorCode::WouldBlock.into()),
        }
    }

    fn subscribe(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, this)
    }

    fn drop(&mut self, this: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_names_and_literals_are_looked_up() {
        for name in [
            "echo",
            "echo.default.svc.cluster.local",
            "10.42.0.7",
            "::1",
            "fe80::1%3",
        ] {
            assert!(plausible(name), "{name}");
        }
        for name in ["", "has space", "semi;colon", &"a".repeat(254)] {
            assert!(!plausible(name), "{name}");
        }
    }
}
