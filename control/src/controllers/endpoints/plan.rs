//! The Endpoints of a Service as a pure function of the Service and the
//! pods of its namespace, as kube-controller-manager's endpoints
//! controller computes them: the selected pods that are bound and have an
//! IP, Ready ones in `addresses` and the others in `notReadyAddresses`,
//! grouped into subsets by the ports they serve.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Pod, Service, ServicePort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use wasmpod_api::selector::LabelSelector;

use crate::controllers::replicaset::plan::{is_ready, is_terminating, selects};

/// The label Kubernetes puts on the Endpoints of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The Service's pod selector; `None` when it has none (or an empty one),
/// in which case its Endpoints are someone else's to manage.
pub fn selector(service: &Service) -> Option<LabelSelector> {
    let map = service.spec.as_ref()?.selector.as_ref()?;
    if map.is_empty() {
        return None;
    }
    LabelSelector::from_map(map).ok()
}

/// The labels the Endpoints carry: the Service's, plus the headless
/// label for a Service without a cluster IP.
pub fn labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    let headless = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| ip == "None");
    if headless {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

fn protocol(p: Option<&str>) -> &str {
    p.filter(|p| !p.is_empty()).unwrap_or("TCP")
}

/// Kubernetes' `FindPort`: a numeric targetPort as is (the Service port
/// when unset), a named one from the pod's container ports of the same
/// protocol.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let want = protocol(port.protocol.as_deref());
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name) && protocol(p.protocol.as_deref()) == want
                })
                .map(|p| p.container_port)
        }
    }
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// Whether a pod that is not Ready is still listed (as not ready): it
/// may yet become Ready under its restart policy.
fn may_become_ready(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    match policy {
        Some("Never") => !matches!(phase, Some("Failed" | "Succeeded")),
        Some("OnFailure") => phase != Some("Succeeded"),
        _ => true,
    }
}

fn address(pod: &Pod, ip: &str, service: &Service) -> EndpointAddress {
    let spec = pod.spec.as_ref();
    let service_name = service.metadata.name.as_deref();
    // A pod's hostname names its address only in the Service that is its
    // subdomain.
    let hostname = spec
        .filter(|s| s.subdomain.is_some() && s.subdomain.as_deref() == service_name)
        .and_then(|s| s.hostname.clone());
    EndpointAddress {
        ip: ip.to_string(),
        hostname,
        node_name: node_name(pod).map(str::to_string),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
    }
}

#[derive(Default)]
struct Group {
    ports: Vec<EndpointPort>,
    ready: Vec<EndpointAddress>,
    not_ready: Vec<EndpointAddress>,
}

/// The subsets of the Service's Endpoints, given the pods of its
/// namespace; in a canonical order (subsets by ports, addresses by IP),
/// so equal inputs give equal outputs.
pub fn subsets(
    service: &Service,
    selector: &LabelSelector,
    pods: &[Arc<Pod>],
) -> Vec<EndpointSubset> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let service_ports = spec.ports.unwrap_or_default();
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for pod in pods {
        if !selects(selector, pod.metadata.labels.as_ref())
            || (is_terminating(pod) && !publish_not_ready)
            || node_name(pod).is_none()
        {
            continue;
        }
        let Some(ip) = pod_ip(pod) else {
            continue;
        };
        let ready = publish_not_ready || is_ready(pod);
        if !ready && !may_become_ready(pod) {
            continue;
        }
        let mut ports: Vec<EndpointPort> = service_ports
            .iter()
            .filter_map(|sp| {
                let port = find_port(pod, sp)?;
                Some(EndpointPort {
                    name: sp.name.clone().filter(|n| !n.is_empty()),
                    port,
                    protocol: Some(protocol(sp.protocol.as_deref()).to_string()),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect();
        if ports.is_empty() && !service_ports.is_empty() {
            // No port of the Service resolves on this pod.
            continue;
        }
        ports.sort_by(|a, b| (&a.name, a.port, &a.protocol).cmp(&(&b.name, b.port, &b.protocol)));
        let key = serde_json::to_string(&ports).unwrap_or_default();
        let group = groups.entry(key).or_default();
        group.ports = ports;
        let addr = address(pod, ip, service);
        if ready {
            group.ready.push(addr);
        } else {
            group.not_ready.push(addr);
        }
    }
    let by_ip = |a: &EndpointAddress, b: &EndpointAddress| {
        let uid = |x: &EndpointAddress| x.target_ref.as_ref().and_then(|r| r.uid.clone());
        a.ip.cmp(&b.ip).then_with(|| uid(a).cmp(&uid(b)))
    };
    groups
        .into_values()
        .map(|mut g| {
            g.ready.sort_by(by_ip);
            g.not_ready.sort_by(by_ip);
            EndpointSubset {
                addresses: (!g.ready.is_empty()).then_some(g.ready),
                not_ready_addresses: (!g.not_ready.is_empty()).then_some(g.not_ready),
                ports: (!g.ports.is_empty()).then_some(g.ports),
            }
        })
        .collect()
}
