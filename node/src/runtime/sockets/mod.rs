//! `wasi:sockets` over a pod's virtual network.
//!
//! wasmtime-wasi's own sockets wrap host sockets; a pod's sockets must
//! instead live on its [`PodNetwork`](crate::network::PodNetwork): its
//! modules share 127.0.0.1 and the pod IP, two pods both listen on :8080,
//! and pod-to-pod connections on one node are in-memory streams. So the
//! node generates its own host bindings for the sockets interfaces
//! (`bindings`) and implements them here:
//! - `network`: the `network` capability and `instance-network`;
//! - `tcp`: TCP sockets (bind, listen, accept, connect) over the pod
//!   network, their data flowing through `streams`;
//! - `lookup`: `ip-name-lookup` through the pod's resolver (cluster names,
//!   then the host's resolver where the pod may leave the cluster);
//! - `udp`: not supported yet: creating a UDP socket fails;
//! - `address` and `error`: conversions between WASI and std types.
//!
//! An instance without a pod network (a program run outside a pod) gets
//! the same interfaces, and every attempt to create a socket or look up a
//! name is denied (`access-denied`).

mod address;
mod bindings;
mod error;
mod lookup;
mod network;
mod streams;
mod tcp;
mod udp;

use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::network::PodNetwork;

/// What an instance's sockets work on: its pod's network, if it has one.
#[derive(Debug, Default)]
pub(crate) struct SocketsCtx {
    network: Option<PodNetwork>,
}

impl SocketsCtx {
    /// Sockets on `network`, or denied when `None`.
    pub(crate) fn new(network: Option<PodNetwork>) -> SocketsCtx {
        SocketsCtx { network }
    }
}

/// What the host functions of the sockets interfaces borrow from a store.
pub(crate) struct SocketsView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) ctx: &'a SocketsCtx,
}

/// Marks [`SocketsView`] as the data the sockets bindings work on.
struct Sockets;

impl HasData for Sockets {
    type Data<'a> = SocketsView<'a>;
}

/// Adds every `wasi:sockets` interface to `linker`; `view` borrows an
/// instance's resource table and sockets context from its store data.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SocketsView<'_>,
) -> wasmtime::Result<()> {
    use bindings::{
        instance_network, ip_name_lookup, network, tcp, tcp_create_socket, udp, udp_create_socket,
    };
    network::add_to_linker::<T, Sockets>(linker, &network::LinkOptions::default(), view)?;
    instance_network::add_to_linker::<T, Sockets>(linker, view)?;
    tcp::add_to_linker::<T, Sockets>(linker, view)?;
    tcp_create_socket::add_to_linker::<T, Sockets>(linker, view)?;
    udp::add_to_linker::<T, Sockets>(linker, view)?;
    udp_create_socket::add_to_linker::<T, Sockets>(linker, view)?;
    ip_name_lookup::add_to_linker::<T, Sockets>(linker, view)?;
    Ok(())
}
