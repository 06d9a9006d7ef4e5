//! The hostPorts a pod asks for (`containers[].ports[].hostPort`), read
//! from its spec for the node's network to expose.

use std::net::IpAddr;

use wasmpod_api::k8s_openapi::api::core::v1::Pod;

use crate::network::host_ports::HostPortSpec;

/// The TCP ports of the pod's containers that carry a valid `hostPort`.
/// UDP and SCTP ports are left out: the pods' network carries TCP only.
pub fn host_port_specs(pod: &Pod) -> Vec<HostPortSpec> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().is_none_or(|proto| proto == "TCP"))
        .filter_map(|p| {
            Some(HostPortSpec {
                host_ip: p
                    .host_ip
                    .as_deref()
                    .and_then(|ip| ip.parse().ok())
                    .filter(|ip: &IpAddr| !ip.is_unspecified()),
                host_port: u16::try_from(p.host_port?).ok().filter(|&n| n != 0)?,
                container_port: u16::try_from(p.container_port).ok().filter(|&n| n != 0)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_tcp_ports_with_a_host_port_are_exposed() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{
                "name": "c",
                "ports": [
                    {"containerPort": 7000, "hostPort": 30700},
                    {"containerPort": 8000},
                    {"containerPort": 53, "hostPort": 5353, "protocol": "UDP"},
                    {"containerPort": 9000, "hostPort": 9090, "hostIP": "127.0.0.5"},
                ],
            }]},
        }))
        .expect("a pod");
        assert_eq!(
            host_port_specs(&pod),
            vec![
                HostPortSpec {
                    host_ip: None,
                    host_port: 30700,
                    container_port: 7000,
                },
                HostPortSpec {
                    host_ip: Some("127.0.0.5".parse().expect("an IP")),
                    host_port: 9090,
                    container_port: 9000,
                },
            ]
        );
    }
}
