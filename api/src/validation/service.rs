//! Validation of Services (type, ports, node ports, affinity, cluster IP)
//! and of the Endpoints that list their backends.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service, ServiceSpec};

use super::field::{Path, inclusive_range, invalid_each, one_of, optional_one_of};
use super::names;
use super::pod::{PROTOCOLS, validate_port_num_or_name};
use super::selector::validate_labels;
use crate::error::FieldError;

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const IP_FAMILIES: &[&str] = &["IPv4", "IPv6"];
const IP_FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
/// The default `--service-node-port-range` of Kubernetes, which wasmpod uses.
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<i32> = 30000..=32767;
/// Longest ClientIP affinity Kubernetes allows (one day).
const MAX_CLIENT_IP_TIMEOUT_SECONDS: i64 = 86400;

pub fn service(obj: &Service, old: Option<&Service>) -> Vec<FieldError> {
    let default_spec = ServiceSpec::default();
    let spec = obj.spec.as_ref().unwrap_or(&default_spec);
    let path = Path::new("spec");
    let mut errors = Vec::new();
    let ty = spec.type_.as_deref().unwrap_or_default();
    one_of(
        &mut errors,
        &path.child("type"),
        spec.type_.as_deref(),
        SERVICE_TYPES,
    );
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or_default();
    let headless = cluster_ip == "None";

    if ty == "ExternalName" {
        let name = spec.external_name.as_deref().unwrap_or_default();
        if name.is_empty() {
            errors.push(FieldError::required(path.child("externalName")));
        } else {
            // A fully qualified name may end with the root dot.
            let bare = name.strip_suffix('.').unwrap_or(name);
            errors.extend(invalid_each(
                &path.child("externalName"),
                name,
                names::is_dns1123_subdomain(bare),
            ));
        }
        if !cluster_ip.is_empty() {
            errors.push(FieldError::invalid(
                path.child("clusterIP"),
                cluster_ip,
                "must be empty when `type` is 'ExternalName'",
            ));
        }
    } else {
        if !cluster_ip.is_empty() && !headless {
            errors.extend(invalid_each(
                &path.child("clusterIP"),
                cluster_ip,
                names::is_valid_ip(cluster_ip),
            ));
        }
        if headless && (ty == "NodePort" || ty == "LoadBalancer") {
            errors.push(FieldError::invalid(
                path.child("clusterIP"),
                cluster_ip,
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        let ports = spec.ports.as_deref().unwrap_or_default();
        if ports.is_empty() && !headless {
            errors.push(FieldError::required(path.child("ports")));
        }
    }
    if let (Some(first), false) = (
        spec.cluster_ips.as_ref().and_then(|ips| ips.first()),
        cluster_ip.is_empty(),
    ) && first != cluster_ip
    {
        errors.push(FieldError::invalid(
            path.child("clusterIPs").index(0),
            first,
            "must match `clusterIP`",
        ));
    }

    let ports = spec.ports.as_deref().unwrap_or_default();
    let mut port_names = BTreeSet::new();
    let mut port_keys = BTreeSet::new();
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.child("ports").index(i);
        match port.name.as_deref().filter(|n| !n.is_empty()) {
            None if ports.len() > 1 => errors.push(FieldError::required(p.child("name"))),
            None => {}
            Some(name) => {
                errors.extend(invalid_each(
                    &p.child("name"),
                    name,
                    names::is_dns1123_label(name),
                ));
                if !port_names.insert(name) {
                    errors.push(FieldError::duplicate(p.child("name"), name));
                }
            }
        }
        errors.extend(invalid_each(
            &p.child("port"),
            &port.port.to_string(),
            names::is_valid_port_num(i64::from(port.port)),
        ));
        one_of(
            &mut errors,
            &p.child("protocol"),
            port.protocol.as_deref(),
            PROTOCOLS,
        );
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        let key = format!("{}/{protocol}", port.port);
        if !port_keys.insert(key.clone()) {
            errors.push(FieldError::duplicate(&p, key));
        }
        if let Some(target) = &port.target_port {
            errors.extend(validate_port_num_or_name(target, &p.child("targetPort")));
        }
        if let Some(node_port) = port.node_port.filter(|n| *n != 0) {
            let np = p.child("nodePort");
            if ty != "NodePort" && ty != "LoadBalancer" {
                errors.push(FieldError::forbidden(
                    &np,
                    format!("may not be used when `type` is '{ty}'"),
                ));
            } else if !NODE_PORT_RANGE.contains(&node_port) {
                errors.push(FieldError::invalid(
                    &np,
                    node_port,
                    format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORT_RANGE.start(),
                        NODE_PORT_RANGE.end()
                    ),
                ));
            }
            if !node_ports.insert((node_port, protocol)) {
                errors.push(FieldError::duplicate(&np, node_port));
            }
        }
    }

    errors.extend(validate_labels(
        spec.selector.as_ref(),
        &path.child("selector"),
    ));
    one_of(
        &mut errors,
        &path.child("sessionAffinity"),
        spec.session_affinity.as_deref(),
        &["ClientIP", "None"],
    );
    match (
        spec.session_affinity.as_deref(),
        &spec.session_affinity_config,
    ) {
        (Some("None"), Some(_)) => errors.push(FieldError::forbidden(
            path.child("sessionAffinityConfig"),
            "must not be set when session affinity is None",
        )),
        (Some("ClientIP"), Some(config)) => {
            let timeout = config
                .client_ip
                .as_ref()
                .and_then(|c| c.timeout_seconds)
                .map(i64::from);
            if let Some(t) = timeout.filter(|t| !(1..=MAX_CLIENT_IP_TIMEOUT_SECONDS).contains(t)) {
                errors.push(FieldError::invalid(
                    path.child("sessionAffinityConfig")
                        .child("clientIP")
                        .child("timeoutSeconds"),
                    t,
                    inclusive_range(1, MAX_CLIENT_IP_TIMEOUT_SECONDS),
                ));
            }
        }
        _ => {}
    }
    if let Some(policy) = spec
        .external_traffic_policy
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let externally_accessible = ty == "NodePort"
            || ty == "LoadBalancer"
            || (ty == "ClusterIP"
                && spec
                    .external_ips
                    .as_ref()
                    .is_some_and(|ips| !ips.is_empty()));
        if !externally_accessible {
            errors.push(FieldError::invalid(
                path.child("externalTrafficPolicy"),
                policy,
                "may only be set for externally-accessible services",
            ));
        } else {
            optional_one_of(
                &mut errors,
                &path.child("externalTrafficPolicy"),
                Some(policy),
                &["Cluster", "Local"],
            );
        }
    }
    optional_one_of(
        &mut errors,
        &path.child("internalTrafficPolicy"),
        spec.internal_traffic_policy.as_deref(),
        &["Cluster", "Local"],
    );
    for (i, family) in spec.ip_families.iter().flatten().enumerate() {
        optional_one_of(
            &mut errors,
            &path.child("ipFamilies").index(i),
            Some(family),
            IP_FAMILIES,
        );
    }
    optional_one_of(
        &mut errors,
        &path.child("ipFamilyPolicy"),
        spec.ip_family_policy.as_deref(),
        IP_FAMILY_POLICIES,
    );
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        errors.extend(invalid_each(
            &path.child("externalIPs").index(i),
            ip,
            names::is_valid_ip(ip),
        ));
    }

    if let Some(old_spec) = old.and_then(|o| o.spec.as_ref()) {
        errors.extend(validate_cluster_ip_update(spec, old_spec, &path));
    }
    errors
}

/// A cluster IP cannot change once allocated, except when the Service
/// becomes or stops being an ExternalName (which has none). An empty
/// clusterIP in the update means "keep it": the server carries it over.
fn validate_cluster_ip_update(
    new: &ServiceSpec,
    old: &ServiceSpec,
    path: &Path,
) -> Vec<FieldError> {
    let external = |s: &ServiceSpec| s.type_.as_deref() == Some("ExternalName");
    if external(new) || external(old) {
        return Vec::new();
    }
    let new_ip = new.cluster_ip.as_deref().unwrap_or_default();
    let old_ip = old.cluster_ip.as_deref().unwrap_or_default();
    if !new_ip.is_empty() && !old_ip.is_empty() && new_ip != old_ip {
        vec![FieldError::immutable(path.child("clusterIP"))]
    } else {
        Vec::new()
    }
}

fn validate_endpoint_address(addr: &EndpointAddress, path: &Path) -> Vec<FieldError> {
    let ip_path = path.child("ip");
    let mut errors = Vec::new();
    match addr.ip.parse::<std::net::IpAddr>() {
        Err(_) => errors.extend(invalid_each(
            &ip_path,
            &addr.ip,
            names::is_valid_ip(&addr.ip),
        )),
        Ok(ip) => {
            let special = if ip.is_unspecified() {
                Some("may not be unspecified (0.0.0.0)")
            } else if ip.is_loopback() {
                Some("may not be in the loopback range (127.0.0.0/8, ::1/128)")
            } else if is_link_local(ip) {
                Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
            } else if is_link_local_multicast(ip) {
                Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
            } else {
                None
            };
            if let Some(msg) = special {
                errors.push(FieldError::invalid(&ip_path, &addr.ip, msg));
            }
        }
    }
    if let Some(host) = addr.hostname.as_deref().filter(|h| !h.is_empty()) {
        errors.extend(invalid_each(
            &path.child("hostname"),
            host,
            names::is_dns1123_label(host),
        ));
    }
    if let Some(node) = addr.node_name.as_deref() {
        errors.extend(invalid_each(
            &path.child("nodeName"),
            node,
            names::is_dns1123_subdomain(node),
        ));
    }
    errors
}

fn is_link_local(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn is_link_local_multicast(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    }
}

pub fn endpoints(obj: &Endpoints, _old: Option<&Endpoints>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, subset) in obj.subsets.iter().flatten().enumerate() {
        let p = Path::new("subsets").index(i);
        let ready = subset.addresses.as_deref().unwrap_or_default();
        let not_ready = subset.not_ready_addresses.as_deref().unwrap_or_default();
        if ready.is_empty() && not_ready.is_empty() {
            errors.push(super::field::required_because(
                &p,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, addr) in ready.iter().enumerate() {
            errors.extend(validate_endpoint_address(
                addr,
                &p.child("addresses").index(j),
            ));
        }
        for (j, addr) in not_ready.iter().enumerate() {
            errors.extend(validate_endpoint_address(
                addr,
                &p.child("notReadyAddresses").index(j),
            ));
        }
        let ports = subset.ports.as_deref().unwrap_or_default();
        for (j, port) in ports.iter().enumerate() {
            let pp = p.child("ports").index(j);
            match port.name.as_deref().filter(|n| !n.is_empty()) {
                None if ports.len() > 1 => errors.push(FieldError::required(pp.child("name"))),
                None => {}
                Some(name) => errors.extend(invalid_each(
                    &pp.child("name"),
                    name,
                    names::is_dns1123_label(name),
                )),
            }
            errors.extend(invalid_each(
                &pp.child("port"),
                &port.port.to_string(),
                names::is_valid_port_num(i64::from(port.port)),
            ));
            one_of(
                &mut errors,
                &pp.child("protocol"),
                port.protocol.as_deref(),
                PROTOCOLS,
            );
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EndpointPort, EndpointSubset, ServicePort};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::validation::testing::fields;

    fn port(name: Option<&str>, port: i32) -> ServicePort {
        ServicePort {
            name: name.map(Into::into),
            port,
            ..Default::default()
        }
    }

    fn svc(ty: &str, ports: Vec<ServicePort>) -> Service {
        let mut s = Service {
            spec: Some(ServiceSpec {
                type_: Some(ty.into()),
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        };
        crate::defaults::service(&mut s);
        s
    }

    fn spec(s: &mut Service) -> &mut ServiceSpec {
        s.spec.get_or_insert_with(Default::default)
    }

    #[test]
    fn defaulted_service_is_valid() {
        assert_eq!(
            service(&svc("ClusterIP", vec![port(None, 80)]), None),
            Vec::new()
        );
    }

    #[test]
    fn service_needs_ports_unless_headless() {
        assert_eq!(
            fields(&service(&svc("ClusterIP", vec![]), None)),
            ["spec.ports"]
        );
        let mut headless = svc("ClusterIP", vec![]);
        spec(&mut headless).cluster_ip = Some("None".into());
        assert_eq!(service(&headless, None), Vec::new());
    }

    #[test]
    fn multiple_ports_need_unique_names() {
        let errs = service(
            &svc(
                "ClusterIP",
                vec![
                    port(Some("http"), 80),
                    port(None, 81),
                    port(Some("http"), 80),
                ],
            ),
            None,
        );
        assert_eq!(
            fields(&errs),
            ["spec.ports[1].name", "spec.ports[2].name", "spec.ports[2]"]
        );
    }

    #[test]
    fn ports_and_target_ports_are_in_range() {
        let mut p = port(None, 0);
        p.target_port = Some(IntOrString::String("Not-A-Name".into()));
        assert_eq!(
            fields(&service(&svc("ClusterIP", vec![p]), None)),
            ["spec.ports[0].port", "spec.ports[0].targetPort"]
        );
    }

    #[test]
    fn node_ports_only_for_node_port_services_and_in_range() {
        let mut p = port(None, 80);
        p.node_port = Some(30080);
        assert_eq!(
            fields(&service(&svc("ClusterIP", vec![p.clone()]), None)),
            ["spec.ports[0].nodePort"]
        );
        assert_eq!(service(&svc("NodePort", vec![p.clone()]), None), Vec::new());
        p.node_port = Some(80);
        assert_eq!(
            fields(&service(&svc("NodePort", vec![p]), None)),
            ["spec.ports[0].nodePort"]
        );
    }

    #[test]
    fn external_name_needs_a_name() {
        let mut s = svc("ExternalName", vec![]);
        assert_eq!(fields(&service(&s, None)), ["spec.externalName"]);
        spec(&mut s).external_name = Some("db.example.com.".into());
        assert_eq!(service(&s, None), Vec::new());
    }

    #[test]
    fn type_and_affinity_must_be_known() {
        let mut s = svc("Magic", vec![port(None, 80)]);
        spec(&mut s).session_affinity = Some("Sticky".into());
        assert_eq!(
            fields(&service(&s, None)),
            ["spec.type", "spec.sessionAffinity"]
        );
    }

    #[test]
    fn cluster_ip_is_immutable_once_set() {
        let mut old = svc("ClusterIP", vec![port(None, 80)]);
        spec(&mut old).cluster_ip = Some("10.96.0.10".into());
        let mut new = old.clone();
        spec(&mut new).cluster_ip = Some("10.96.0.11".into());
        spec(&mut new).cluster_ips = Some(vec!["10.96.0.11".into()]);
        assert_eq!(fields(&service(&new, Some(&old))), ["spec.clusterIP"]);
        // Setting one where there was none is allowed.
        let unset = svc("ClusterIP", vec![port(None, 80)]);
        assert_eq!(service(&new, Some(&unset)), Vec::new());
    }

    #[test]
    fn selector_labels_are_checked() {
        let mut s = svc("ClusterIP", vec![port(None, 80)]);
        spec(&mut s).selector = Some([("app".to_string(), "bad value".to_string())].into());
        assert_eq!(fields(&service(&s, None)), ["spec.selector"]);
    }

    #[test]
    fn endpoint_addresses_need_usable_ips() {
        let addr = |ip: &str| EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        };
        let e = Endpoints {
            subsets: Some(vec![
                EndpointSubset {
                    addresses: Some(vec![addr("10.1.0.5"), addr("nope"), addr("127.0.0.1")]),
                    not_ready_addresses: None,
                    ports: Some(vec![
                        EndpointPort {
                            port: 80,
                            protocol: Some("TCP".into()),
                            name: Some("http".into()),
                            app_protocol: None,
                        },
                        EndpointPort {
                            port: 0,
                            protocol: Some("TCP".into()),
                            name: None,
                            app_protocol: None,
                        },
                    ]),
                },
                EndpointSubset::default(),
            ]),
            ..Default::default()
        };
        assert_eq!(
            fields(&endpoints(&e, None)),
            [
                "subsets[0].addresses[1].ip",
                "subsets[0].addresses[2].ip",
                "subsets[0].ports[1].name",
                "subsets[0].ports[1].port",
                "subsets[1]"
            ]
        );
    }
}
