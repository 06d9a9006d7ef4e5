//! From the API's Services, Endpoints and Nodes to what the node's virtual
//! network routes by: [`ServiceEntry`], [`EndpointsEntry`] and [`Peer`].
//! Pure, so every rule is unit-tested.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::Ipv4Net;
use wasmpod_api::k8s_openapi::api::core::v1::{Endpoints, Node, Service};

use crate::network::Peer;
use crate::network::services::{
    Balancing, DEFAULT_AFFINITY_TIMEOUT, EndpointAddress, EndpointsEntry, ServiceEntry, ServicePort,
};

/// The Service annotation that picks how connections are spread:
/// `round-robin` (the default) or `random`.
pub const BALANCING_ANNOTATION: &str = "network.wasmpod.io/balancing";

pub use crate::network::tunnel::TUNNEL_ANNOTATION;

/// The Service as the node routes it; `None` for Services the virtual
/// network does not serve (ExternalName, a ClusterIP that is not IPv4).
pub fn service_entry(service: &Service) -> Option<ServiceEntry> {
    let spec = service.spec.as_ref()?;
    let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return None;
    }
    let cluster_ip = match spec.cluster_ip.as_deref() {
        Some("None") => None,
        Some(ip) => Some(ip.parse::<Ipv4Addr>().ok()?),
        None => return None,
    };
    let exposed = matches!(kind, "NodePort" | "LoadBalancer");
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter(|p| is_tcp(p.protocol.as_deref()))
        .filter_map(|p| {
            Some(ServicePort {
                name: p.name.clone().unwrap_or_default(),
                port: u16::try_from(p.port).ok()?,
                node_port: p
                    .node_port
                    .filter(|_| exposed)
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0),
            })
        })
        .collect();
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map_or(DEFAULT_AFFINITY_TIMEOUT, Duration::from_secs)
    });
    let balancing = match service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BALANCING_ANNOTATION))
        .map(String::as_str)
    {
        Some("random") => Balancing::Random,
        _ => Balancing::RoundRobin,
    };
    Some(ServiceEntry {
        namespace: service.metadata.namespace.clone().unwrap_or_default(),
        name: service.metadata.name.clone()?,
        cluster_ip,
        ports,
        affinity,
        balancing,
    })
}

/// The Endpoints as the node routes them: each address with its subset's
/// TCP ports, `addresses` ready and `notReadyAddresses` not.
pub fn endpoints_entry(endpoints: &Endpoints) -> Option<EndpointsEntry> {
    let mut addresses = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports: Vec<(String, u16)> = subset
            .ports
            .iter()
            .flatten()
            .filter(|p| is_tcp(p.protocol.as_deref()))
            .filter_map(|p| {
                Some((
                    p.name.clone().unwrap_or_default(),
                    u16::try_from(p.port).ok()?,
                ))
            })
            .collect();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (address, ready) in ready.chain(not_ready) {
            let Ok(ip) = address.ip.parse::<Ipv4Addr>() else {
                continue;
            };
            addresses.push(EndpointAddress {
                ip,
                hostname: address.hostname.clone().filter(|h| !h.is_empty()),
                ready,
                ports: ports.clone(),
            });
        }
    }
    Some(EndpointsEntry {
        namespace: endpoints.metadata.namespace.clone().unwrap_or_default(),
        name: endpoints.metadata.name.clone()?,
        addresses,
    })
}

/// Another node as a route: its pod CIDR and tunnel address. `None` for
/// this node itself and for nodes that lack either.
pub fn peer(node: &Node, own_name: &str) -> Option<Peer> {
    if node.metadata.name.as_deref() == Some(own_name) {
        return None;
    }
    let pod_cidr: Ipv4Net = node.spec.as_ref()?.pod_cidr.as_deref()?.parse().ok()?;
    let tunnel: SocketAddr = node
        .metadata
        .annotations
        .as_ref()?
        .get(TUNNEL_ANNOTATION)?
        .parse()
        .ok()?;
    Some(Peer {
        pod_cidr: pod_cidr.trunc(),
        tunnel,
    })
}

fn is_tcp(protocol: Option<&str>) -> bool {
    protocol.is_none_or(|p| p.eq_ignore_ascii_case("TCP"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).expect("a Service")
    }

    #[test]
    fn a_cluster_ip_service_with_defaults() {
        let entry = service_entry(&service(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"clusterIP": "10.43.0.10", "ports": [{"port": 80, "targetPort": 8080}]},
        })))
        .expect("an entry");
        assert_eq!(
            entry,
            ServiceEntry {
                namespace: "shop".into(),
                name: "web".into(),
                cluster_ip: Some("10.43.0.10".parse().expect("an IP")),
                ports: vec![ServicePort {
                    name: String::new(),
                    port: 80,
                    node_port: None
                }],
                affinity: None,
                balancing: Balancing::RoundRobin,
            }
        );
    }

    #[test]
    fn node_ports_affinity_and_balancing_come_from_the_service() {
        let entry = service_entry(&service(json!({
            "metadata": {"name": "web", "namespace": "shop",
                         "annotations": {"network.wasmpod.io/balancing": "random"}},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.10",
                     "sessionAffinity": "ClientIP",
                     "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
                     "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                               {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]},
        })))
        .expect("an entry");
        assert_eq!(entry.balancing, Balancing::Random);
        assert_eq!(entry.affinity, Some(Duration::from_secs(60)));
        assert_eq!(
            entry.ports,
            vec![ServicePort {
                name: "http".into(),
                port: 80,
                node_port: Some(30080)
            }]
        );
        let default_timeout = service_entry(&service(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"clusterIP": "10.43.0.10", "sessionAffinity": "ClientIP", "ports": []},
        })))
        .expect("an entry");
        assert_eq!(default_timeout.affinity, Some(DEFAULT_AFFINITY_TIMEOUT));
    }

    #[test]
    fn headless_and_external_name_services() {
        let headless = service_entry(&service(json!({
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"clusterIP": "None", "ports": [{"port": 5432}]},
        })))
        .expect("an entry");
        assert_eq!(headless.cluster_ip, None);
        assert!(
            service_entry(&service(json!({
                "metadata": {"name": "ext", "namespace": "shop"},
                "spec": {"type": "ExternalName", "externalName": "example.com"},
            })))
            .is_none()
        );
    }

    #[test]
    fn endpoints_carry_readiness_hostnames_and_named_ports() {
        let endpoints: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop"},
            "subsets": [{
                "addresses": [{"ip": "10.42.0.4", "hostname": "db-0"}],
                "notReadyAddresses": [{"ip": "10.42.1.4", "hostname": "db-1"}],
                "ports": [{"name": "pg", "port": 5432}, {"name": "dns", "port": 53, "protocol": "UDP"}],
            }],
        }))
        .expect("Endpoints");
        let entry = endpoints_entry(&endpoints).expect("an entry");
        assert_eq!(entry.addresses.len(), 2);
        assert_eq!(entry.addresses[0].hostname.as_deref(), Some("db-0"));
        assert!(entry.addresses[0].ready);
        assert!(!entry.addresses[1].ready);
        assert_eq!(entry.addresses[0].ports, vec![("pg".to_string(), 5432)]);
    }

    #[test]
    fn peers_are_other_nodes_with_a_cidr_and_a_tunnel() {
        let node = |name: &str, cidr: Option<&str>, tunnel: Option<&str>| -> Node {
            serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": tunnel.map(|t| json!({TUNNEL_ANNOTATION: t}))},
                "spec": {"podCIDR": cidr},
            }))
            .expect("a Node")
        };
        assert_eq!(
            peer(
                &node("b", Some("10.42.1.0/24"), Some("192.0.2.2:10251")),
                "a"
            ),
            Some(Peer {
                pod_cidr: "10.42.1.0/24".parse().expect("a CIDR"),
                tunnel: "192.0.2.2:10251".parse().expect("an address"),
            })
        );
        assert_eq!(
            peer(
                &node("a", Some("10.42.0.0/24"), Some("192.0.2.1:10251")),
                "a"
            ),
            None
        );
        assert_eq!(peer(&node("c", None, Some("192.0.2.3:10251")), "a"), None);
        assert_eq!(peer(&node("d", Some("10.42.3.0/24"), None), "a"), None);
    }
}
