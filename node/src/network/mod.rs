//! The pods' virtual network.
//!
//! Every pod gets a [`PodNetwork`]: its own 127.0.0.1 and its pod IP, shared
//! by all its modules. Ports are the pod's own, so a port bound twice inside
//! one pod is `AddressInUse` while two pods on one node both listen on
//! :8080. Nothing here opens a host socket for a pod: a connection between
//! pods on one node is an in-memory stream ([`stream`]); the [`Fabric`] (one
//! per node) decides where every other connection goes: a Service's virtual
//! IP to one of its endpoints ([`services`]), another node's pod through that
//! node's tunnel listener ([`tunnel`]), anything else to the real network
//! where policy allows.
//!
//! This module knows no WebAssembly and no API types: the runtime exposes a
//! [`PodNetwork`] to guests as `wasi:sockets`, the agent feeds the fabric
//! the pod IPs, Services and peer nodes it learns from the API.

mod error;
mod fabric;
mod forward;
pub mod host_ports;
pub mod node_ports;
mod ports;
pub mod services;
mod stream;
pub mod tunnel;

pub use error::NetError;
pub use fabric::{Fabric, FabricConfig, Peer, PodNetwork};
pub use stream::{Accepted, VirtualListener, VirtualStream};

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The cluster's pod network; each node gets a /24 of it.
pub fn pod_network() -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(10, 42, 0, 0), 16)
}

/// The cluster's Service network (ClusterIPs), as the API server allocates.
pub fn service_network() -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(10, 43, 0, 0), 16)
}
