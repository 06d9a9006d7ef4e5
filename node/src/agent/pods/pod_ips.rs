//! Pod IPs of the node's pod CIDR: one per pod UID, handed out round-robin
//! (as the host-local IPAM plugin kubelet's network usually uses), so an IP
//! a pod gave back is the last to be handed out again. The network
//! address, the first address (the node's own, gateway-like) and the
//! broadcast address are never given to a pod.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// No IP could be given to a pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodIpError {
    #[error("no free pod IP left in the node's pod CIDR {0}")]
    Exhausted(Ipv4Net),
}

/// The pod IPs of one CIDR and which pod holds each.
#[derive(Debug, Clone)]
pub struct PodIps {
    cidr: Ipv4Net,
    by_uid: HashMap<String, Ipv4Addr>,
    used: HashSet<Ipv4Addr>,
    /// The offset in the CIDR of the IP handed out last.
    last: u32,
}

impl PodIps {
    pub fn new(cidr: Ipv4Net) -> Self {
        Self {
            cidr: cidr.trunc(),
            by_uid: HashMap::new(),
            used: HashSet::new(),
            last: 1,
        }
    }

    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The offsets of the addresses pods may get: from .2 to the one
    /// before broadcast.
    fn usable(&self) -> (u32, u32) {
        let size = self.size();
        (2, size.saturating_sub(2))
    }

    fn size(&self) -> u32 {
        let host_bits = 32 - u32::from(self.cidr.prefix_len());
        1u32.checked_shl(host_bits).unwrap_or(u32::MAX)
    }

    fn at(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.cidr.network()).wrapping_add(offset))
    }

    fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        self.cidr
            .contains(&ip)
            .then(|| u32::from(ip) - u32::from(self.cidr.network()))
    }

    /// The IP of pod `uid`: the one it holds, else `preferred` (the IP a
    /// pod reported before the node restarted) if it is usable and free,
    /// else the next free one after the last handed out.
    pub fn allocate(
        &mut self,
        uid: &str,
        preferred: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, PodIpError> {
        if let Some(ip) = self.by_uid.get(uid) {
            return Ok(*ip);
        }
        let (first, last) = self.usable();
        let wanted = preferred.filter(|ip| {
            self.offset(*ip)
                .is_some_and(|o| (first..=last).contains(&o))
                && !self.used.contains(ip)
        });
        let ip = match wanted {
            Some(ip) => ip,
            None => self.next_free(first, last)?,
        };
        self.used.insert(ip);
        self.by_uid.insert(uid.to_string(), ip);
        if let Some(offset) = self.offset(ip) {
            self.last = offset;
        }
        Ok(ip)
    }

    fn next_free(&self, first: u32, last: u32) -> Result<Ipv4Addr, PodIpError> {
        if first > last {
            return Err(PodIpError::Exhausted(self.cidr));
        }
        let count = last - first + 1;
        let start = if self.last < first || self.last >= last {
            first
        } else {
            self.last + 1
        };
        (0..count)
            .map(|i| first + (start - first + i) % count)
            .map(|offset| self.at(offset))
            .find(|ip| !self.used.contains(ip))
            .ok_or(PodIpError::Exhausted(self.cidr))
    }

    /// Gives pod `uid`'s IP back; returns it.
    pub fn release(&mut self, uid: &str) -> Option<Ipv4Addr> {
        let ip = self.by_uid.remove(uid)?;
        self.used.remove(&ip);
        Some(ip)
    }

    /// The IP pod `uid` holds.
    pub fn get(&self, uid: &str) -> Option<Ipv4Addr> {
        self.by_uid.get(uid).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Ipv4Net {
        text.parse().expect("a CIDR")
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().expect("an IP")
    }

    #[test]
    fn pods_get_distinct_ips_from_dot_two() {
        let mut ips = PodIps::new(cidr("10.42.3.0/24"));
        assert_eq!(ips.allocate("a", None), Ok(ip("10.42.3.2")));
        assert_eq!(ips.allocate("b", None), Ok(ip("10.42.3.3")));
        // Asking again is answered with the same IP.
        assert_eq!(ips.allocate("a", None), Ok(ip("10.42.3.2")));
    }

    #[test]
    fn a_released_ip_is_handed_out_last() {
        let mut ips = PodIps::new(cidr("10.42.3.0/24"));
        ips.allocate("a", None).expect("an IP");
        ips.allocate("b", None).expect("an IP");
        assert_eq!(ips.release("a"), Some(ip("10.42.3.2")));
        assert_eq!(ips.allocate("c", None), Ok(ip("10.42.3.4")));
    }

    #[test]
    fn a_preferred_ip_is_kept_when_usable_and_free() {
        let mut ips = PodIps::new(cidr("10.42.3.0/24"));
        assert_eq!(
            ips.allocate("a", Some(ip("10.42.3.77"))),
            Ok(ip("10.42.3.77"))
        );
        // Taken, outside the CIDR, or reserved: a fresh one instead.
        assert_eq!(
            ips.allocate("b", Some(ip("10.42.3.77"))),
            Ok(ip("10.42.3.78"))
        );
        assert_eq!(
            ips.allocate("c", Some(ip("10.42.9.5"))),
            Ok(ip("10.42.3.79"))
        );
        assert_eq!(
            ips.allocate("d", Some(ip("10.42.3.1"))),
            Ok(ip("10.42.3.80"))
        );
        assert_eq!(
            ips.allocate("e", Some(ip("10.42.3.255"))),
            Ok(ip("10.42.3.81"))
        );
    }

    #[test]
    fn the_cidr_runs_out_after_253_pods_and_wraps_around() {
        let mut ips = PodIps::new(cidr("10.42.3.0/24"));
        for i in 0..253 {
            let got = ips.allocate(&format!("pod-{i}"), None).expect("an IP");
            assert!(got >= ip("10.42.3.2") && got <= ip("10.42.3.254"), "{got}");
        }
        assert_eq!(
            ips.allocate("one-too-many", None),
            Err(PodIpError::Exhausted(cidr("10.42.3.0/24")))
        );
        ips.release("pod-10");
        assert_eq!(ips.allocate("late", None), Ok(ip("10.42.3.12")));
    }
}
