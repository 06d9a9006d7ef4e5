//! Defaults of the core (`v1`) kinds other than Pod and the
//! ReplicationController: Service, Namespace, Secret, PersistentVolume,
//! PersistentVolumeClaim, Endpoints and Node.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ClientIPConfig, Endpoints, Namespace, NamespaceSpec, NamespaceStatus, Node, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeClaimStatus, PersistentVolumeStatus, Secret, Service,
    SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// How long ClientIP session affinity sticks by default (3 hours).
const DEFAULT_CLIENT_IP_TIMEOUT_SECONDS: i32 = 10800;

/// The label every namespace carries with its own name, so selectors can
/// pick namespaces by name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// `SetDefaults_Service`, plus the IP family fields the Service registry
/// fills for a single-stack IPv4 cluster. The cluster IP itself is left to
/// the server's allocator.
pub fn service(obj: &mut Service) {
    let spec = obj.spec.get_or_insert_with(Default::default);
    let affinity = spec.session_affinity.get_or_insert_with(|| "None".into());
    match affinity.as_str() {
        "None" => spec.session_affinity_config = None,
        "ClientIP" => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            if timeout.is_none() {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(DEFAULT_CLIENT_IP_TIMEOUT_SECONDS),
                    }),
                });
            }
        }
        _ => {}
    }
    let ty = spec.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
    for port in spec.ports.iter_mut().flatten() {
        if port.protocol.as_deref().unwrap_or_default().is_empty() {
            port.protocol = Some("TCP".into());
        }
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(n)) => *n == 0,
            Some(IntOrString::String(s)) => s.is_empty(),
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    let has_external_ips = spec
        .external_ips
        .as_ref()
        .is_some_and(|ips| !ips.is_empty());
    let externally_accessible =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips);
    if externally_accessible
        && spec
            .external_traffic_policy
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        spec.internal_traffic_policy
            .get_or_insert_with(|| "Cluster".into());
    }
    if ty == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
    }

    // clusterIP and clusterIPs[0] are the same address, whichever was given.
    let cluster_ip = spec.cluster_ip.clone().filter(|ip| !ip.is_empty());
    let first_of_ips = spec
        .cluster_ips
        .as_ref()
        .and_then(|ips| ips.first())
        .cloned();
    match (cluster_ip, first_of_ips) {
        (Some(ip), None) => spec.cluster_ips = Some(vec![ip]),
        (None, Some(ip)) => spec.cluster_ip = Some(ip),
        _ => {}
    }
    let headless = spec.cluster_ip.as_deref() == Some("None");
    if ty != "ExternalName" && !headless {
        let ipv6 = spec
            .cluster_ip
            .as_deref()
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        spec.ip_family_policy
            .get_or_insert_with(|| "SingleStack".into());
        if spec.ip_families.as_ref().is_none_or(Vec::is_empty) {
            spec.ip_families = Some(vec![if ipv6 { "IPv6" } else { "IPv4" }.into()]);
        }
    }
}

/// Namespaces start Active with the `kubernetes` finalizer (which the
/// namespace controller removes once the namespace is empty) and carry
/// their name as a label.
pub fn namespace(obj: &mut Namespace) {
    if let Some(name) = obj.metadata.name.clone().filter(|n| !n.is_empty()) {
        obj.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(NAMESPACE_NAME_LABEL.into(), name);
    }
    let spec = obj.spec.get_or_insert_with(NamespaceSpec::default);
    spec.finalizers
        .get_or_insert_with(|| vec!["kubernetes".into()]);
    let status = obj.status.get_or_insert_with(NamespaceStatus::default);
    status.phase.get_or_insert_with(|| "Active".into());
}

/// Secrets default to `Opaque`; `stringData` is a write-only convenience
/// merged into `data` (its values win) and never stored.
pub fn secret(obj: &mut Secret) {
    if obj.type_.as_deref().unwrap_or_default().is_empty() {
        obj.type_ = Some("Opaque".into());
    }
    if let Some(string_data) = obj.string_data.take() {
        let data = obj.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in string_data {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
}

/// New volumes are Pending until the volume controller marks them Available.
pub fn persistent_volume(obj: &mut PersistentVolume) {
    let spec = obj.spec.get_or_insert_with(Default::default);
    if spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        spec.persistent_volume_reclaim_policy = Some("Retain".into());
    }
    spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    if let Some(hp) = spec.host_path.as_mut() {
        hp.type_.get_or_insert_with(String::new);
    }
    let status = obj
        .status
        .get_or_insert_with(PersistentVolumeStatus::default);
    status.phase.get_or_insert_with(|| "Pending".into());
}

pub fn persistent_volume_claim(obj: &mut PersistentVolumeClaim) {
    obj.spec
        .get_or_insert_with(Default::default)
        .volume_mode
        .get_or_insert_with(|| "Filesystem".into());
    let status = obj
        .status
        .get_or_insert_with(PersistentVolumeClaimStatus::default);
    status.phase.get_or_insert_with(|| "Pending".into());
}

pub fn endpoints(obj: &mut Endpoints) {
    for port in obj
        .subsets
        .iter_mut()
        .flatten()
        .flat_map(|s| s.ports.iter_mut().flatten())
    {
        if port.protocol.as_deref().unwrap_or_default().is_empty() {
            port.protocol = Some("TCP".into());
        }
    }
}

/// A node that reports capacity but not allocatable has all of it allocatable.
pub fn node(obj: &mut Node) {
    if let Some(status) = obj.status.as_mut()
        && status.allocatable.is_none()
    {
        status.allocatable.clone_from(&status.capacity);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeStatus, ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn svc(ty: Option<&str>, cluster_ip: Option<&str>) -> Service {
        Service {
            spec: Some(ServiceSpec {
                type_: ty.map(Into::into),
                cluster_ip: cluster_ip.map(Into::into),
                ports: Some(vec![ServicePort {
                    port: 80,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn service_defaults_match_kubernetes() {
        let mut s = svc(None, None);
        service(&mut s);
        let spec = s.spec.expect("spec");
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.session_affinity.as_deref(), Some("None"));
        assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.external_traffic_policy, None);
        assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
        assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
        assert_eq!(
            spec.cluster_ip, None,
            "the allocator assigns the cluster IP"
        );
        let port = &spec.ports.expect("ports")[0];
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert_eq!(port.target_port, Some(IntOrString::Int(80)));
    }

    #[test]
    fn node_port_services_get_external_traffic_policy() {
        let mut s = svc(Some("NodePort"), None);
        service(&mut s);
        assert_eq!(
            s.spec.expect("spec").external_traffic_policy.as_deref(),
            Some("Cluster")
        );
        let mut s = svc(Some("LoadBalancer"), None);
        service(&mut s);
        assert_eq!(
            s.spec.expect("spec").allocate_load_balancer_node_ports,
            Some(true)
        );
    }

    #[test]
    fn headless_and_external_name_services_get_no_ip_families() {
        for mut s in [svc(None, Some("None")), svc(Some("ExternalName"), None)] {
            service(&mut s);
            let spec = s.spec.expect("spec");
            assert_eq!(spec.ip_families, None);
            assert_eq!(spec.ip_family_policy, None);
        }
    }

    #[test]
    fn client_ip_affinity_gets_a_timeout() {
        let mut s = svc(None, None);
        s.spec.as_mut().expect("spec").session_affinity = Some("ClientIP".into());
        service(&mut s);
        let config = s
            .spec
            .expect("spec")
            .session_affinity_config
            .expect("config");
        assert_eq!(
            config.client_ip.and_then(|c| c.timeout_seconds),
            Some(10800)
        );
    }

    #[test]
    fn namespace_defaults() {
        let mut ns = Namespace {
            metadata: ObjectMeta {
                name: Some("team".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespace(&mut ns);
        assert_eq!(
            ns.spec.and_then(|s| s.finalizers),
            Some(vec!["kubernetes".to_string()])
        );
        assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));
        assert_eq!(
            ns.metadata
                .labels
                .expect("labels")
                .get(NAMESPACE_NAME_LABEL)
                .map(String::as_str),
            Some("team")
        );
    }

    #[test]
    fn secret_string_data_is_merged_into_data() {
        let mut s = Secret {
            data: Some(
                [
                    ("a".to_string(), ByteString(b"old".to_vec())),
                    ("b".to_string(), ByteString(b"keep".to_vec())),
                ]
                .into(),
            ),
            string_data: Some([("a".to_string(), "new".to_string())].into()),
            ..Default::default()
        };
        secret(&mut s);
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        assert_eq!(s.string_data, None);
        let data = s.data.expect("data");
        assert_eq!(data["a"].0, b"new");
        assert_eq!(data["b"].0, b"keep");
    }

    #[test]
    fn volumes_start_pending() {
        let mut pv = PersistentVolume::default();
        persistent_volume(&mut pv);
        assert_eq!(pv.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
        let spec = pv.spec.expect("spec");
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
        let mut pvc = PersistentVolumeClaim::default();
        persistent_volume_claim(&mut pvc);
        assert_eq!(pvc.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
        assert_eq!(
            pvc.spec.and_then(|s| s.volume_mode).as_deref(),
            Some("Filesystem")
        );
    }

    #[test]
    fn node_allocatable_defaults_to_capacity() {
        let capacity: BTreeMap<String, Quantity> =
            [("cpu".to_string(), Quantity("4".into()))].into();
        let mut n = Node {
            status: Some(NodeStatus {
                capacity: Some(capacity.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        node(&mut n);
        assert_eq!(n.status.and_then(|s| s.allocatable), Some(capacity));
    }
}
