//! hostPorts: a pod's container port exposed on the node's own address for
//! as long as the pod runs.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tracing::{info, warn};

use super::fabric::{Fabric, PodNetwork};
use super::forward::Forwarder;

/// A pod's port exposed on the node. Dropping it closes the node's
/// listener; connections already forwarded live on until either end
/// closes.
#[derive(Debug)]
pub struct HostPort {
    forwarder: Forwarder,
    pod_dst: SocketAddr,
}

impl HostPort {
    /// Listens on `bind` (the node's address and the hostPort) and forwards
    /// each connection to the pod's `container_port` on its pod IP. The
    /// guard does not keep the pod's network alive: once the pod is gone,
    /// connections are refused.
    pub fn expose(pod: &PodNetwork, bind: SocketAddr, container_port: u16) -> io::Result<HostPort> {
        let pod_dst = SocketAddr::from((pod.ip(), container_port));
        HostPort::to_address(pod.fabric(), bind, pod_dst)
    }

    /// Listens on `bind` and forwards each connection to `pod_dst` on the
    /// virtual network of `fabric`.
    pub fn to_address(
        fabric: &Fabric,
        bind: SocketAddr,
        pod_dst: SocketAddr,
    ) -> io::Result<HostPort> {
        let target = Arc::new(move |_client: SocketAddr| Ok(pod_dst));
        let forwarder = Forwarder::start(bind, fabric.clone(), target)?;
        info!(bind = %forwarder.local_addr(), %pod_dst, "serving hostPort");
        Ok(HostPort { forwarder, pod_dst })
    }

    /// The node address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.forwarder.local_addr()
    }

    /// The pod address it forwards to.
    pub fn pod_addr(&self) -> SocketAddr {
        self.pod_dst
    }
}

/// One container port a pod asks to expose (`containers[].ports[]` with a
/// `hostPort`, protocol TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPortSpec {
    /// The `hostIP` asked for; the node's address when unset.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
}

/// Exposes each of a pod's host ports on `node_ip` (or its own `hostIP`).
/// A port that cannot be bound (another pod or process has it) is logged
/// and left out: the pod runs without it, as it would on a node whose
/// port was taken behind the scheduler's back.
pub fn expose_all(pod: &PodNetwork, node_ip: IpAddr, specs: &[HostPortSpec]) -> Vec<HostPort> {
    specs
        .iter()
        .filter_map(|spec| {
            let bind = SocketAddr::new(spec.host_ip.unwrap_or(node_ip), spec.host_port);
            match HostPort::expose(pod, bind, spec.container_port) {
                Ok(exposed) => Some(exposed),
                Err(e) => {
                    warn!(%bind, pod_ip = %pod.ip(), error = %e, "cannot expose hostPort");
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::network::FabricConfig;

    #[tokio::test]
    async fn a_host_port_forwards_to_the_pod_until_dropped() {
        let fabric = Fabric::new(FabricConfig::default());
        let pod = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
        let mut listener = pod
            .listen("0.0.0.0:8080".parse().expect("addr"), 8)
            .expect("listen");
        let server = tokio::spawn(async move {
            let mut accepted = listener.accept().await.expect("a connection");
            let mut buf = [0u8; 5];
            accepted.stream.read_exact(&mut buf).await.expect("read");
            accepted.stream.write_all(&buf).await.expect("write");
            accepted.local
        });
        let exposed =
            HostPort::expose(&pod, "127.0.0.1:0".parse().expect("addr"), 8080).expect("expose");
        let addr = exposed.local_addr();
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client.write_all(b"hello").await.expect("write");
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"hello");
        assert_eq!(server.await.expect("server"), exposed.pod_addr());

        drop(exposed);
        let mut closed = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(closed, "the listener closes with its guard");
    }

    #[tokio::test]
    async fn a_host_port_already_taken_is_an_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let fabric = Fabric::new(FabricConfig::default());
        let pod = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
        let bind = taken.local_addr().expect("addr");
        assert!(HostPort::expose(&pod, bind, 8080).is_err());
    }
}
