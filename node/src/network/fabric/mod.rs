//! The node's switchboard: which pod owns which IP, and where a connection
//! to any address goes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock, Weak};

use ipnet::Ipv4Net;
use tokio::net::TcpStream;
use tracing::debug;

use super::error::NetError;
use super::ports::{Arrival, PodPorts};
use super::services::{Route, ServiceTable};
use super::stream::{Accepted, VirtualListener, VirtualStream};
use super::{pod_network, service_network, tunnel};

/// What a node's fabric allows beyond its own pods.
#[derive(Debug, Clone, Default)]
pub struct FabricConfig {
    /// Whether pods may connect to (and look up names of) addresses outside
    /// the cluster.
    pub allow_egress: bool,
    /// The node's own addresses: pods never reach these through the
    /// virtual network, so the node's API and log ports stay private.
    pub node_addresses: Vec<IpAddr>,
}

/// Another node, as far as routing is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The pod IPs the node hands out.
    pub pod_cidr: Ipv4Net,
    /// Its tunnel listener, which carries connections to its pods.
    pub tunnel: SocketAddr,
}

/// The virtual network of one node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fabric {
    inner: Arc<FabricInner>,
}

#[derive(Debug)]
struct FabricInner {
    config: FabricConfig,
    pods: RwLock<HashMap<Ipv4Addr, Weak<PodInner>>>,
    services: RwLock<Arc<ServiceTable>>,
    peers: RwLock<Arc<Vec<Peer>>>,
    /// Counts Service table replacements, so listeners that follow the
    /// table (NodePorts) learn of each change.
    services_generation: tokio::sync::watch::Sender<u64>,
}

/// Where a connection comes from.
#[derive(Debug, Clone, Copy)]
struct Origin<'a> {
    /// The connecting pod, if a pod connects (not the node's own proxies).
    pod: Option<&'a PodInner>,
    /// The source address the other end sees.
    source: SocketAddr,
    /// Whether the connecting side may leave the cluster.
    egress: bool,
}

impl Fabric {
    /// A node's fabric with no pods, Services or peers yet.
    pub fn new(config: FabricConfig) -> Fabric {
        Fabric {
            inner: Arc::new(FabricInner {
                config,
                pods: RwLock::new(HashMap::new()),
                services: RwLock::new(Arc::new(ServiceTable::default())),
                peers: RwLock::new(Arc::new(Vec::new())),
                services_generation: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    /// Gives a pod its network. The pod keeps its IP (and its ports) as
    /// long as any clone of the returned [`PodNetwork`] lives.
    /// `egress` is whether this pod may reach addresses outside the
    /// cluster (the node's policy and the namespace's, combined by the
    /// caller).
    pub fn attach(&self, ip: Ipv4Addr, namespace: &str, egress: bool) -> PodNetwork {
        let pod = Arc::new(PodInner {
            ip,
            namespace: namespace.to_owned(),
            egress,
            ports: Arc::new(PodPorts::new(ip)),
            fabric: self.clone(),
        });
        write(&self.inner.pods).insert(ip, Arc::downgrade(&pod));
        PodNetwork { inner: pod }
    }

    /// Replaces the Services the node routes and resolves.
    pub fn set_services(&self, services: ServiceTable) {
        *write(&self.inner.services) = Arc::new(services);
        self.inner
            .services_generation
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// Changes whenever the Service table is replaced.
    pub fn service_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.services_generation.subscribe()
    }

    /// The Services the node routes and resolves now.
    pub fn services(&self) -> Arc<ServiceTable> {
        Arc::clone(&read(&self.inner.services))
    }

    /// Replaces the other nodes' pod CIDRs and tunnel addresses.
    pub fn set_peers(&self, peers: Vec<Peer>) {
        *write(&self.inner.peers) = Arc::new(peers);
    }

    /// Whether a pod on this node has `ip`.
    pub fn has_pod(&self, ip: Ipv4Addr) -> bool {
        self.pod(ip).is_some()
    }

    fn pod(&self, ip: Ipv4Addr) -> Option<Arc<PodInner>> {
        read(&self.inner.pods).get(&ip).and_then(Weak::upgrade)
    }

    /// Connects the node itself (a NodePort or hostPort listener, a probe)
    /// to `dst` on the virtual network, as `source`. Service IPs are
    /// balanced and other nodes' pods reached through their tunnels; the
    /// outside world only if `egress`.
    pub async fn connect(
        &self,
        source: SocketAddr,
        dst: SocketAddr,
        egress: bool,
    ) -> Result<VirtualStream, NetError> {
        let origin = Origin {
            pod: None,
            source,
            egress,
        };
        self.route(origin, dst).await
    }

    /// Delivers a connection that arrived through this node's tunnel to the
    /// local pod that listens on `dst`; nothing else is reachable this way.
    pub fn connect_local(
        &self,
        source: SocketAddr,
        dst: SocketAddr,
    ) -> Result<VirtualStream, NetError> {
        let IpAddr::V4(ip) = dst.ip() else {
            return Err(NetError::Unreachable(dst));
        };
        let pod = self.pod(ip).ok_or(NetError::Unreachable(dst))?;
        pod.deliver(dst, Arrival::PodIp, source)
    }

    async fn route(&self, origin: Origin<'_>, dst: SocketAddr) -> Result<VirtualStream, NetError> {
        let ip = dst.ip();
        if ip.is_loopback() || ip.is_unspecified() {
            let pod = origin.pod.ok_or(NetError::ConnectionRefused(dst))?;
            let local = SocketAddr::new(dst.ip(), dst.port());
            return pod.deliver(local, Arrival::Loopback, origin.source);
        }
        let IpAddr::V4(v4) = ip else {
            return self.egress(origin, dst).await;
        };
        if service_network().contains(&v4) {
            let services = self.services();
            return match services.route(dst, origin.source.ip()) {
                Route::To(backend) => self.route_to_pod(origin, backend).await,
                Route::NoEndpoints | Route::NotAService => Err(NetError::ConnectionRefused(dst)),
            };
        }
        if pod_network().contains(&v4) {
            return self.route_to_pod(origin, dst).await;
        }
        self.egress(origin, dst).await
    }

    async fn route_to_pod(
        &self,
        origin: Origin<'_>,
        dst: SocketAddr,
    ) -> Result<VirtualStream, NetError> {
        let IpAddr::V4(ip) = dst.ip() else {
            return Err(NetError::Unreachable(dst));
        };
        if let Some(pod) = self.pod(ip) {
            return pod.deliver(dst, Arrival::PodIp, origin.source);
        }
        let peers = Arc::clone(&read(&self.inner.peers));
        match peers.iter().find(|peer| peer.pod_cidr.contains(&ip)) {
            Some(peer) => tunnel::connect(peer.tunnel, origin.source, dst).await,
            None => Err(NetError::Unreachable(dst)),
        }
    }

    async fn egress(&self, origin: Origin<'_>, dst: SocketAddr) -> Result<VirtualStream, NetError> {
        if !origin.egress || self.inner.config.node_addresses.contains(&dst.ip()) {
            return Err(NetError::Denied(format!("connecting to {dst}")));
        }
        debug!(%dst, "connection leaves the cluster");
        let stream = TcpStream::connect(dst).await?;
        Ok(VirtualStream::Tcp(stream))
    }
}

/// One pod's view of the network, shared by its modules. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PodNetwork {
    inner: Arc<PodInner>,
}

#[derive(Debug)]
struct PodInner {
    ip: Ipv4Addr,
    namespace: String,
    egress: bool,
    ports: Arc<PodPorts>,
    fabric: Fabric,
}

impl Drop for PodInner {
    fn drop(&mut self) {
        let mut pods = write(&self.fabric.inner.pods);
        // The IP may already belong to a newer pod.
        if pods
            .get(&self.ip)
            .is_some_and(|pod| pod.strong_count() == 0)
        {
            pods.remove(&self.ip);
        }
    }
}

impl PodInner {
    /// Hands a new connection from `source` to the listener on `local`.
    fn deliver(
        &self,
        local: SocketAddr,
        arrival: Arrival,
        source: SocketAddr,
    ) -> Result<VirtualStream, NetError> {
        let (client, server) = VirtualStream::pair();
        let accepted = Accepted {
            stream: server,
            peer: source,
            local,
        };
        match self.ports.deliver(local.port(), arrival, accepted) {
            Ok(()) => Ok(client),
            Err(_) => Err(NetError::ConnectionRefused(local)),
        }
    }
}

/// Two handles are equal when they are the same pod's network.
impl PartialEq for PodNetwork {
    fn eq(&self, other: &PodNetwork) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for PodNetwork {}

impl PodNetwork {
    /// The pod IP.
    pub fn ip(&self) -> Ipv4Addr {
        self.inner.ip
    }

    /// The pod's namespace, which names resolve relative to.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Listens on `addr`: the unspecified address (both loopback and the
    /// pod IP), 127.0.0.1 or the pod IP; port 0 picks a free port.
    /// `backlog` is how many connections may wait to be accepted.
    pub fn listen(&self, addr: SocketAddr, backlog: usize) -> Result<VirtualListener, NetError> {
        let (registration, incoming) = self.inner.ports.bind(addr, backlog)?;
        Ok(VirtualListener {
            incoming,
            registration,
        })
    }

    /// Connects to `dst`; returns the stream and the local address the
    /// other end sees as its peer.
    pub async fn connect(&self, dst: SocketAddr) -> Result<(VirtualStream, SocketAddr), NetError> {
        let local_ip = if dst.ip().is_loopback() || dst.ip().is_unspecified() {
            dst.ip()
        } else {
            IpAddr::V4(self.inner.ip)
        };
        let local_ip = if local_ip.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            local_ip
        };
        let source = SocketAddr::new(local_ip, self.inner.ports.ephemeral_port());
        let origin = Origin {
            pod: Some(&self.inner),
            source,
            egress: self.inner.egress,
        };
        let stream = self.inner.fabric.route(origin, dst).await?;
        Ok((stream, source))
    }

    /// Resolves `name` as the pod sees it: IP literals, `localhost`,
    /// Service and pod names of the cluster (relative to the pod's
    /// namespace), then the host's resolver if the pod may leave the
    /// cluster.
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, NetError> {
        let trimmed = name.trim_end_matches('.');
        if let Ok(ip) = trimmed.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if trimmed.eq_ignore_ascii_case("localhost") {
            return Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        }
        let services = self.inner.fabric.services();
        if let Some(ips) = services.lookup(trimmed, &self.inner.namespace) {
            return if ips.is_empty() {
                Err(NetError::NameNotFound(name.to_owned()))
            } else {
                Ok(ips)
            };
        }
        if is_cluster_name(trimmed) {
            return Err(NetError::NameNotFound(name.to_owned()));
        }
        if !self.inner.egress {
            return Err(NetError::Denied(format!("looking up {name:?}")));
        }
        let found = tokio::net::lookup_host((trimmed, 0))
            .await
            .map_err(|_| NetError::NameNotFound(name.to_owned()))?;
        let ips: Vec<IpAddr> = found.map(|addr| addr.ip()).collect();
        if ips.is_empty() {
            return Err(NetError::NameNotFound(name.to_owned()));
        }
        Ok(ips)
    }

    /// The node's fabric this pod is attached to.
    pub fn fabric(&self) -> &Fabric {
        &self.inner.fabric
    }
}

/// Names only the cluster can answer: they never go to the host's resolver.
fn is_cluster_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".cluster.local") || lower.ends_with(".svc")
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
