//! The Services a node routes and resolves: ClusterIP:port and NodePorts
//! -> a ready endpoint (round-robin or random, with optional ClientIP
//! session affinity), and the cluster's DNS names -> IPs.
//!
//! The table is built from plain entries ([`ServiceEntry`],
//! [`EndpointsEntry`]) the agent converts from the API's Services and
//! Endpoints; nothing here knows the API types. A table is immutable except
//! for its balancing state (round-robin positions and sticky clients), which
//! [`ServiceTable::carry_over`] hands from one table to the next so a
//! rebuild does not forget which client sticks to which endpoint.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Kubernetes' default `sessionAffinityConfig.clientIP.timeoutSeconds`.
pub const DEFAULT_AFFINITY_TIMEOUT: Duration = Duration::from_secs(10_800);

/// Sticky clients kept per Service port before expired ones are dropped.
const STICKY_PRUNE_AT: usize = 4096;

/// Where a connection to an address goes, as far as Services are
/// concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The address is no Service's (virtual IP and port).
    NotAService,
    /// A Service's, but it has no ready endpoint: refuse at once.
    NoEndpoints,
    /// To this endpoint (a pod IP and target port).
    To(SocketAddr),
}

/// How a Service spreads new connections over its ready endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balancing {
    /// Each endpoint in turn.
    #[default]
    RoundRobin,
    /// An endpoint chosen at random for each connection.
    Random,
}

/// One Service, as the node routes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceEntry {
    pub namespace: String,
    pub name: String,
    /// The virtual IP; `None` for a headless Service, whose name resolves
    /// to its endpoints' IPs.
    pub cluster_ip: Option<Ipv4Addr>,
    pub ports: Vec<ServicePort>,
    /// `sessionAffinity: ClientIP` with its timeout: a client keeps its
    /// endpoint while it connects at least this often.
    pub affinity: Option<Duration>,
    pub balancing: Balancing,
}

/// One port of a Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicePort {
    /// The port's name ("" for the only, unnamed port): endpoints' ports of
    /// the same name are its targets.
    pub name: String,
    pub port: u16,
    /// The node port, for Services of type NodePort or LoadBalancer.
    pub node_port: Option<u16>,
}

/// The endpoints of the Service of the same namespace and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointsEntry {
    pub namespace: String,
    pub name: String,
    pub addresses: Vec<EndpointAddress>,
}

/// One endpoint (a pod) of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointAddress {
    pub ip: Ipv4Addr,
    /// The pod's hostname (StatefulSet pods): `<hostname>.<service>`
    /// resolves to this address.
    pub hostname: Option<String>,
    /// Only ready endpoints receive connections and are resolved.
    pub ready: bool,
    /// The ports it serves, by Service port name.
    pub ports: Vec<(String, u16)>,
}

/// The Services of the cluster as one node sees them.
#[derive(Debug, Default)]
pub struct ServiceTable {
    ports: Vec<PortState>,
    by_cluster_ip: HashMap<SocketAddrV4, usize>,
    by_node_port: HashMap<u16, usize>,
    names: HashMap<(String, String), Names>,
}

/// What one Service's names resolve to.
#[derive(Debug, Default)]
struct Names {
    cluster_ip: Option<Ipv4Addr>,
    /// Ready endpoints' IPs, sorted, without duplicates.
    ready: Vec<Ipv4Addr>,
    /// Ready endpoints by lowercase hostname.
    hostnames: HashMap<String, Ipv4Addr>,
}

/// Identifies a Service port across tables: namespace, name, port name.
type PortKey = (String, String, String);

/// One Service port: its ready targets and balancing state.
#[derive(Debug)]
struct PortState {
    key: PortKey,
    backends: Vec<SocketAddr>,
    balancing: Balancing,
    affinity: Option<Duration>,
    balance: Arc<BalanceState>,
}

/// What a Service port remembers between connections.
#[derive(Debug)]
struct BalanceState {
    next: AtomicUsize,
    random: AtomicU64,
    sticky: Mutex<HashMap<IpAddr, Sticky>>,
}

#[derive(Debug, Clone, Copy)]
struct Sticky {
    backend: SocketAddr,
    last_used: Instant,
}

impl Default for BalanceState {
    fn default() -> Self {
        Self {
            next: AtomicUsize::new(0),
            random: AtomicU64::new(RandomState::new().hash_one(Instant::now())),
            sticky: Mutex::new(HashMap::new()),
        }
    }
}

impl BalanceState {
    /// A uniformly spread 64-bit number (SplitMix64 over an atomic
    /// counter: cheap, lock-free, and good enough to spread connections).
    fn random(&self) -> u64 {
        let mut z = self
            .random
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl ServiceTable {
    /// The table of `services`, each with the endpoints of the same
    /// namespace and name. Services without an Endpoints entry have no
    /// endpoints; endpoints without a Service are ignored.
    pub fn new(services: &[ServiceEntry], endpoints: &[EndpointsEntry]) -> ServiceTable {
        let endpoints: HashMap<(&str, &str), &EndpointsEntry> = endpoints
            .iter()
            .map(|e| ((e.namespace.as_str(), e.name.as_str()), e))
            .collect();
        let mut table = ServiceTable::default();
        for service in services {
            let addresses = endpoints
                .get(&(service.namespace.as_str(), service.name.as_str()))
                .map_or(&[][..], |e| e.addresses.as_slice());
            table.add(service, addresses);
        }
        table
    }

    fn add(&mut self, service: &ServiceEntry, addresses: &[EndpointAddress]) {
        let ready: Vec<&EndpointAddress> = addresses.iter().filter(|a| a.ready).collect();
        for port in &service.ports {
            let backends: BTreeSet<SocketAddr> = ready
                .iter()
                .flat_map(|a| {
                    a.ports
                        .iter()
                        .filter(|(name, _)| *name == port.name)
                        .map(|(_, target)| SocketAddr::from((a.ip, *target)))
                })
                .collect();
            let index = self.ports.len();
            self.ports.push(PortState {
                key: (
                    service.namespace.clone(),
                    service.name.clone(),
                    port.name.clone(),
                ),
                backends: backends.into_iter().collect(),
                balancing: service.balancing,
                affinity: service.affinity,
                balance: Arc::default(),
            });
            if let Some(ip) = service.cluster_ip {
                self.by_cluster_ip
                    .insert(SocketAddrV4::new(ip, port.port), index);
            }
            if let Some(node_port) = port.node_port {
                self.by_node_port.insert(node_port, index);
            }
        }
        let ready_ips: BTreeSet<Ipv4Addr> = ready.iter().map(|a| a.ip).collect();
        let hostnames = ready
            .iter()
            .filter_map(|a| Some((a.hostname.as_ref()?.to_ascii_lowercase(), a.ip)))
            .collect();
        self.names.insert(
            (
                service.namespace.to_ascii_lowercase(),
                service.name.to_ascii_lowercase(),
            ),
            Names {
                cluster_ip: service.cluster_ip,
                ready: ready_ips.into_iter().collect(),
                hostnames,
            },
        );
    }

    /// This table with the balancing state (round-robin positions, sticky
    /// clients) of the same Service ports in `previous`.
    pub fn carry_over(mut self, previous: &ServiceTable) -> ServiceTable {
        let old: HashMap<&PortKey, &Arc<BalanceState>> = previous
            .ports
            .iter()
            .map(|p| (&p.key, &p.balance))
            .collect();
        for port in &mut self.ports {
            if let Some(state) = old.get(&port.key) {
                port.balance = Arc::clone(state);
            }
        }
        self
    }

    /// The endpoint a new connection from `client` to `dst` goes to.
    pub fn route(&self, dst: SocketAddr, client: IpAddr) -> Route {
        self.route_at(dst, client, Instant::now())
    }

    fn route_at(&self, dst: SocketAddr, client: IpAddr, now: Instant) -> Route {
        let SocketAddr::V4(dst) = dst else {
            return Route::NotAService;
        };
        match self.by_cluster_ip.get(&dst) {
            Some(&index) => self.pick(index, client, now),
            None => Route::NotAService,
        }
    }

    /// The IPs `name` stands for, looked up from a pod in `namespace`;
    /// `None` when the name is none of the cluster's.
    ///
    /// Names are tried as a pod's resolver does with Kubernetes' search
    /// path (`<ns>.svc.cluster.local`, `svc.cluster.local`,
    /// `cluster.local`, then as given), so `svc`, `svc.ns`, `svc.ns.svc`,
    /// `svc.ns.svc.cluster.local` and `<hostname>.<svc>[.<ns>[.svc[.cluster.local]]]`
    /// all work, case-insensitively. A Service resolves to its ClusterIP, a
    /// headless one to its ready endpoints' IPs.
    pub fn lookup(&self, name: &str, namespace: &str) -> Option<Vec<IpAddr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        let namespace = namespace.to_ascii_lowercase();
        let candidates = [
            format!("{name}.{namespace}.svc.{CLUSTER_DOMAIN}"),
            format!("{name}.svc.{CLUSTER_DOMAIN}"),
            format!("{name}.{CLUSTER_DOMAIN}"),
            name,
        ];
        candidates.iter().find_map(|fqdn| self.lookup_fqdn(fqdn))
    }

    /// Resolves a fully qualified cluster name:
    /// `<svc>.<ns>.svc.cluster.local` or `<hostname>.<svc>.<ns>.svc.cluster.local`.
    fn lookup_fqdn(&self, fqdn: &str) -> Option<Vec<IpAddr>> {
        let rest = fqdn.strip_suffix(CLUSTER_DOMAIN)?.strip_suffix(".svc.")?;
        let labels: Vec<&str> = rest.split('.').collect();
        match labels.as_slice() {
            [service, namespace] => {
                let names = self
                    .names
                    .get(&(namespace.to_string(), service.to_string()))?;
                let ips = match names.cluster_ip {
                    Some(ip) => vec![IpAddr::V4(ip)],
                    None => names.ready.iter().copied().map(IpAddr::V4).collect(),
                };
                Some(ips)
            }
            [hostname, service, namespace] => {
                let names = self
                    .names
                    .get(&(namespace.to_string(), service.to_string()))?;
                names
                    .hostnames
                    .get(*hostname)
                    .map(|ip| vec![IpAddr::V4(*ip)])
            }
            _ => None,
        }
    }

    /// The NodePorts of all Services, which every node listens on, in
    /// ascending order.
    pub fn node_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.by_node_port.keys().copied().collect();
        ports.sort_unstable();
        ports
    }

    /// The endpoint a new connection from `client` to the node's
    /// `node_port` goes to.
    pub fn route_node_port(&self, node_port: u16, client: IpAddr) -> Route {
        match self.by_node_port.get(&node_port) {
            Some(&index) => self.pick(index, client, Instant::now()),
            None => Route::NotAService,
        }
    }

    fn pick(&self, index: usize, client: IpAddr, now: Instant) -> Route {
        let Some(port) = self.ports.get(index) else {
            return Route::NotAService;
        };
        if port.backends.is_empty() {
            return Route::NoEndpoints;
        }
        let Some(timeout) = port.affinity else {
            return Route::To(choose(port));
        };
        let mut sticky = port
            .balance
            .sticky
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let kept = sticky.get(&client).filter(|s| {
            now.saturating_duration_since(s.last_used) < timeout
                && port.backends.contains(&s.backend)
        });
        let backend = match kept {
            Some(s) => s.backend,
            None => choose(port),
        };
        if sticky.len() >= STICKY_PRUNE_AT {
            sticky.retain(|_, s| now.saturating_duration_since(s.last_used) < timeout);
        }
        sticky.insert(
            client,
            Sticky {
                backend,
                last_used: now,
            },
        );
        Route::To(backend)
    }
}

/// A backend of a port with at least one, by its balancing mode.
fn choose(port: &PortState) -> SocketAddr {
    let n = port.backends.len();
    let i = match port.balancing {
        Balancing::RoundRobin => port.balance.next.fetch_add(1, Ordering::Relaxed) % n,
        Balancing::Random => {
            let n64 = u64::try_from(n).unwrap_or(u64::MAX);
            usize::try_from(port.balance.random() % n64).unwrap_or(0)
        }
    };
    port.backends[i.min(n - 1)]
}

#[cfg(test)]
mod tests;
