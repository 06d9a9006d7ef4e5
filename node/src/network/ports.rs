//! One pod's port table: which ports its modules listen on, and on which of
//! its addresses.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::mpsc;

use super::error::NetError;
use super::stream::Accepted;

/// The ports handed out for port 0 and for outgoing connections: Linux's
/// default `ip_local_port_range`.
const EPHEMERAL_FIRST: u16 = 32768;
const EPHEMERAL_LAST: u16 = 60999;

/// Which of the pod's addresses a connection arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// 127.0.0.1 (or ::1): only the pod's own modules.
    Loopback,
    /// The pod IP: the pod itself, other pods, Services, the node.
    PodIp,
}

/// The pod's listeners by port.
#[derive(Debug)]
pub(crate) struct PodPorts {
    pod_ip: Ipv4Addr,
    table: Mutex<Table>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    listeners: HashMap<u16, Vec<Bound>>,
    next_ephemeral: u16,
}

#[derive(Debug)]
struct Bound {
    id: u64,
    ip: IpAddr,
    incoming: mpsc::Sender<Accepted>,
}

impl Bound {
    fn takes(&self, arrival: Arrival, pod_ip: Ipv4Addr) -> bool {
        self.ip.is_unspecified()
            || match arrival {
                Arrival::Loopback => self.ip.is_loopback(),
                Arrival::PodIp => self.ip == IpAddr::V4(pod_ip),
            }
    }

    fn overlaps(&self, ip: IpAddr) -> bool {
        self.ip.is_unspecified() || ip.is_unspecified() || self.ip == ip
    }
}

/// A bound port; dropping it frees the port.
#[derive(Debug)]
pub(crate) struct Registration {
    ports: Weak<PodPorts>,
    addr: SocketAddr,
    id: u64,
}

impl Registration {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(ports) = self.ports.upgrade() else {
            return;
        };
        let mut table = ports.lock();
        if let Some(bound) = table.listeners.get_mut(&self.addr.port()) {
            bound.retain(|bound| bound.id != self.id);
            if bound.is_empty() {
                table.listeners.remove(&self.addr.port());
            }
        }
    }
}

impl PodPorts {
    pub(crate) fn new(pod_ip: Ipv4Addr) -> PodPorts {
        PodPorts {
            pod_ip,
            table: Mutex::new(Table {
                listeners: HashMap::new(),
                next_ephemeral: EPHEMERAL_FIRST,
            }),
            next_id: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table stays consistent even if a holder panicked.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Binds `addr` (port 0 picks a free port) and returns the registration
    /// and the receiving end of its accept queue.
    pub(crate) fn bind(
        self: &Arc<Self>,
        addr: SocketAddr,
        backlog: usize,
    ) -> Result<(Registration, mpsc::Receiver<Accepted>), NetError> {
        let ip = addr.ip();
        let own = ip.is_unspecified() || ip.is_loopback() || ip == IpAddr::V4(self.pod_ip);
        if !own {
            return Err(NetError::AddressNotAvailable(addr));
        }
        let mut table = self.lock();
        let port = if addr.port() == 0 {
            free_port(&mut table, ip).ok_or(NetError::PortsExhausted)?
        } else {
            addr.port()
        };
        let taken = table
            .listeners
            .get(&port)
            .is_some_and(|bound| bound.iter().any(|bound| bound.overlaps(ip)));
        let addr = SocketAddr::new(ip, port);
        if taken {
            return Err(NetError::AddressInUse(addr));
        }
        let (sender, receiver) = mpsc::channel(backlog.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        table.listeners.entry(port).or_default().push(Bound {
            id,
            ip,
            incoming: sender,
        });
        let registration = Registration {
            ports: Arc::downgrade(self),
            addr,
            id,
        };
        Ok((registration, receiver))
    }

    /// Hands a new connection to the listener of `port` that takes
    /// connections arriving this way; gives it back if there is none or its
    /// queue is full.
    pub(crate) fn deliver(
        &self,
        port: u16,
        arrival: Arrival,
        accepted: Accepted,
    ) -> Result<(), Accepted> {
        let table = self.lock();
        let Some(bound) = table
            .listeners
            .get(&port)
            .and_then(|bound| bound.iter().find(|bound| bound.takes(arrival, self.pod_ip)))
        else {
            return Err(accepted);
        };
        bound
            .incoming
            .try_send(accepted)
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(accepted)
                | mpsc::error::TrySendError::Closed(accepted) => accepted,
            })
    }

    /// A port for the local end of an outgoing connection.
    pub(crate) fn ephemeral_port(&self) -> u16 {
        let mut table = self.lock();
        next_ephemeral(&mut table)
    }
}

fn next_ephemeral(table: &mut Table) -> u16 {
    let port = table.next_ephemeral;
    table.next_ephemeral = if port >= EPHEMERAL_LAST {
        EPHEMERAL_FIRST
    } else {
        port + 1
    };
    port
}

fn free_port(table: &mut Table, ip: IpAddr) -> Option<u16> {
    let range = usize::from(EPHEMERAL_LAST - EPHEMERAL_FIRST) + 1;
    (0..range).find_map(|_| {
        let port = next_ephemeral(table);
        let taken = table
            .listeners
            .get(&port)
            .is_some_and(|bound| bound.iter().any(|bound| bound.overlaps(ip)));
        (!taken).then_some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Arc<PodPorts> {
        Arc::new(PodPorts::new(Ipv4Addr::new(10, 42, 0, 5)))
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a socket address")
    }

    #[test]
    fn a_port_bound_twice_is_in_use() {
        let ports = ports();
        let _first = ports.bind(addr("0.0.0.0:8080"), 8).expect("first bind");
        for again in ["0.0.0.0:8080", "127.0.0.1:8080", "10.42.0.5:8080"] {
            assert!(matches!(
                ports.bind(addr(again), 8),
                Err(NetError::AddressInUse(_))
            ));
        }
    }

    #[test]
    fn loopback_and_pod_ip_are_separate_addresses() {
        let ports = ports();
        let _lo = ports.bind(addr("127.0.0.1:80"), 8).expect("loopback");
        let _ip = ports.bind(addr("10.42.0.5:80"), 8).expect("pod ip");
    }

    #[test]
    fn dropping_the_registration_frees_the_port() {
        let ports = ports();
        let first = ports.bind(addr("0.0.0.0:8080"), 8).expect("first bind");
        drop(first);
        ports
            .bind(addr("0.0.0.0:8080"), 8)
            .expect("bind after drop");
    }

    #[test]
    fn foreign_addresses_cannot_be_bound() {
        let ports = ports();
        assert!(matches!(
            ports.bind(addr("10.42.0.6:80"), 8),
            Err(NetError::AddressNotAvailable(_))
        ));
    }

    #[test]
    fn port_zero_gets_a_free_ephemeral_port() {
        let ports = ports();
        let (first, _rx) = ports.bind(addr("0.0.0.0:0"), 8).expect("bind");
        let (second, _rx2) = ports.bind(addr("0.0.0.0:0"), 8).expect("bind");
        assert!(first.addr().port() >= EPHEMERAL_FIRST);
        assert_ne!(first.addr().port(), second.addr().port());
    }

    #[test]
    fn a_loopback_listener_takes_no_connections_to_the_pod_ip() {
        let ports = ports();
        let (_registration, _rx) = ports.bind(addr("127.0.0.1:80"), 8).expect("bind");
        let (stream, _) = super::super::stream::VirtualStream::pair();
        let accepted = Accepted {
            stream,
            peer: addr("10.42.0.9:50000"),
            local: addr("10.42.0.5:80"),
        };
        assert!(ports.deliver(80, Arrival::PodIp, accepted).is_err());
    }
}
