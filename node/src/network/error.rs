//! Why a virtual network operation failed, in the terms of a socket API.

use std::net::SocketAddr;

/// A failed bind, connect or lookup on a pod's virtual network. Each
/// variant maps to one `wasi:sockets` error code.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The port is already bound in this pod.
    #[error("address {0} is already in use")]
    AddressInUse(SocketAddr),
    /// The address is not one of this pod's (its loopback, its pod IP or
    /// the unspecified address).
    #[error("address {0} is not available in this pod")]
    AddressNotAvailable(SocketAddr),
    /// Nobody listens there, or a Service has no ready endpoint.
    #[error("connection to {0} refused")]
    ConnectionRefused(SocketAddr),
    /// No route: a pod IP no known node owns.
    #[error("no route to {0}")]
    Unreachable(SocketAddr),
    /// Policy denies the pod this connection or lookup.
    #[error("{0} is not allowed for this pod")]
    Denied(String),
    /// The name resolves to nothing.
    #[error("name {0:?} not found")]
    NameNotFound(String),
    /// No ephemeral port left in the pod.
    #[error("no free port left in the pod")]
    PortsExhausted,
    /// A real socket (to another node or outside the cluster) failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
