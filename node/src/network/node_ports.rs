//! NodePorts: every node listens on each Service's nodePort on its own
//! address and forwards the connections to the Service's endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::error::NetError;
use super::fabric::Fabric;
use super::forward::{Forwarder, Target};
use super::services::Route;

/// How often ports that could not be bound are tried again while the
/// Services stay the same.
const RETRY: Duration = Duration::from_secs(10);

/// The node's NodePort listeners, kept in line with the Service table.
#[derive(Debug)]
pub struct NodePorts {
    fabric: Fabric,
    bind_ip: IpAddr,
    open: BTreeMap<u16, Forwarder>,
    /// Ports that could not be bound, warned about once.
    failing: BTreeSet<u16>,
}

impl NodePorts {
    /// No listeners yet; [`NodePorts::sync`] opens them on `bind_ip`.
    pub fn new(fabric: Fabric, bind_ip: IpAddr) -> NodePorts {
        NodePorts {
            fabric,
            bind_ip,
            open: BTreeMap::new(),
            failing: BTreeSet::new(),
        }
    }

    /// Opens a listener for every NodePort of the Service table that has
    /// none and closes those of NodePorts that are gone. A port that cannot
    /// be bound (another process has it) is logged and left for the next
    /// sync. Returns whether every NodePort is served.
    pub fn sync(&mut self) -> bool {
        let wanted = self.fabric.services().node_ports();
        self.open.retain(|port, _| {
            let keep = wanted.contains(port);
            if !keep {
                info!(port, "closing NodePort");
            }
            keep
        });
        self.failing.retain(|port| wanted.contains(port));
        let mut complete = true;
        for port in wanted {
            if self.open.contains_key(&port) {
                continue;
            }
            let bind = SocketAddr::new(self.bind_ip, port);
            match Forwarder::start(
                bind,
                self.fabric.clone(),
                node_port_target(&self.fabric, port),
            ) {
                Ok(forwarder) => {
                    info!(%bind, "serving NodePort");
                    self.failing.remove(&port);
                    self.open.insert(port, forwarder);
                }
                Err(e) => {
                    if self.failing.insert(port) {
                        warn!(%bind, error = %e, "cannot listen on NodePort; retrying");
                    } else {
                        debug!(%bind, error = %e, "cannot listen on NodePort yet");
                    }
                    complete = false;
                }
            }
        }
        complete
    }

    /// The NodePorts served now.
    pub fn ports(&self) -> Vec<u16> {
        self.open.keys().copied().collect()
    }

    /// Keeps the listeners in line with the Service table until `shutdown`
    /// resolves, then closes them.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut changes = self.fabric.service_changes();
        loop {
            changes.mark_unchanged();
            let complete = self.sync();
            let retry = async {
                if complete {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(RETRY).await;
            };
            tokio::select! {
                () = &mut shutdown => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = retry => {}
            }
        }
    }
}

/// Where a connection to `port` goes: an endpoint of the Service that owns
/// the NodePort, chosen per connection.
fn node_port_target(fabric: &Fabric, port: u16) -> Target {
    let fabric = fabric.clone();
    Arc::new(move |client: SocketAddr| {
        let local = SocketAddr::new(client.ip(), port);
        match fabric.services().route_node_port(port, client.ip()) {
            Route::To(backend) => Ok(backend),
            Route::NoEndpoints | Route::NotAService => Err(NetError::ConnectionRefused(local)),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::network::FabricConfig;
    use crate::network::services::{
        EndpointAddress, EndpointsEntry, ServiceEntry, ServicePort, ServiceTable,
    };

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn free_port() -> u16 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    }

    fn echo_service(node_port: u16, ready: bool) -> ServiceTable {
        let service = ServiceEntry {
            namespace: "default".into(),
            name: "echo".into(),
            cluster_ip: Some(Ipv4Addr::new(10, 43, 0, 10)),
            ports: vec![ServicePort {
                name: String::new(),
                port: 80,
                node_port: Some(node_port),
            }],
            ..ServiceEntry::default()
        };
        let endpoints = EndpointsEntry {
            namespace: "default".into(),
            name: "echo".into(),
            addresses: vec![EndpointAddress {
                ip: Ipv4Addr::new(10, 42, 0, 2),
                hostname: None,
                ready,
                ports: vec![(String::new(), 8080)],
            }],
        };
        ServiceTable::new(&[service], &[endpoints])
    }

    #[tokio::test]
    async fn no_services_no_listeners() {
        let fabric = Fabric::new(FabricConfig::default());
        let mut ports = NodePorts::new(fabric, LOOPBACK);
        assert!(ports.sync());
        assert!(ports.ports().is_empty());
    }

    #[tokio::test]
    async fn a_node_port_reaches_the_services_endpoint_and_closes_with_it() {
        let fabric = Fabric::new(FabricConfig::default());
        let pod = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
        let mut listener = pod
            .listen("0.0.0.0:8080".parse().expect("addr"), 8)
            .expect("listen");
        tokio::spawn(async move {
            while let Some(mut accepted) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 5];
                    if accepted.stream.read_exact(&mut buf).await.is_ok() {
                        let _ = accepted.stream.write_all(&buf).await;
                    }
                });
            }
        });
        let node_port = free_port();
        fabric.set_services(echo_service(node_port, true));
        let mut ports = NodePorts::new(fabric.clone(), LOOPBACK);
        assert!(ports.sync());
        assert_eq!(ports.ports(), vec![node_port]);

        let mut client = TcpStream::connect((LOOPBACK, node_port))
            .await
            .expect("connect");
        client.write_all(b"hello").await.expect("write");
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"hello");

        fabric.set_services(ServiceTable::default());
        assert!(ports.sync());
        assert!(ports.ports().is_empty());
        assert!(TcpStream::connect((LOOPBACK, node_port)).await.is_err());
    }

    #[tokio::test]
    async fn a_port_taken_by_another_process_is_retried_not_fatal() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let node_port = taken.local_addr().expect("addr").port();
        let fabric = Fabric::new(FabricConfig::default());
        fabric.set_services(echo_service(node_port, false));
        let mut ports = NodePorts::new(fabric, LOOPBACK);
        assert!(!ports.sync());
        drop(taken);
        assert!(ports.sync());
        assert_eq!(ports.ports(), vec![node_port]);
    }

    #[tokio::test]
    async fn run_follows_service_changes() {
        let fabric = Fabric::new(FabricConfig::default());
        let node_port = free_port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(NodePorts::new(fabric.clone(), LOOPBACK).run(async {
            let _ = stopped.await;
        }));
        fabric.set_services(echo_service(node_port, false));
        let mut connected = false;
        for _ in 0..100 {
            if TcpStream::connect((LOOPBACK, node_port)).await.is_ok() {
                connected = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(connected, "the NodePort listener opened after the change");
        let _ = stop.send(());
        task.await.expect("run ends on shutdown");
    }
}
