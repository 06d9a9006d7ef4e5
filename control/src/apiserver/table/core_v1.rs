//! Rows of the core/v1 kinds other than Pod, Node, Namespace and the
//! storage kinds: Service, Endpoints, ConfigMap, Secret, ServiceAccount and
//! Event.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::Column;
use super::format::{count, int, labels, list, since, text, text_or, timestamp};

pub(super) const SERVICE: &[Column] = &[
    Column::name(),
    Column::new(
        "Type",
        "string",
        "type determines how the Service is exposed.",
    ),
    Column::new(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    Column::new(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    Column::new(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service.",
    ),
    Column::age(),
    Column::wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
    ),
];

pub(super) const ENDPOINTS: &[Column] = &[
    Column::name(),
    Column::new(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets.",
    ),
    Column::age(),
];

pub(super) const CONFIG_MAP: &[Column] = &[
    Column::name(),
    Column::new("Data", "string", "Data contains the configuration data."),
    Column::age(),
];

pub(super) const SECRET: &[Column] = &[
    Column::name(),
    Column::new(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    Column::new("Data", "string", "Data contains the secret data."),
    Column::age(),
];

pub(super) const SERVICE_ACCOUNT: &[Column] = &[
    Column::name(),
    Column::new(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
    ),
    Column::age(),
];

pub(super) const EVENT: &[Column] = &[
    Column::new(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    Column::new(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    Column::new(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    Column::new("Object", "string", "The object that this event is about."),
    Column::wide(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
    ),
    Column::wide("Source", "string", "The component reporting this event."),
    Column::new(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    Column::wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded.",
    ),
    Column::wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Column {
        priority: 1,
        ..Column::name()
    },
];

/// The external address cell of a Service, by type.
fn external_ip(svc: &Value) -> String {
    let external: Vec<&str> = list(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match text_or(svc, "/spec/type", "ClusterIP") {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let ingress: BTreeSet<&str> = list(svc, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| text_or(i, "/ip", text(i, "/hostname")))
                .filter(|a| !a.is_empty())
                .collect();
            let mut addresses: Vec<&str> = ingress.into_iter().collect();
            addresses.extend(external);
            if addresses.is_empty() {
                "<pending>".to_string()
            } else {
                addresses.join(",")
            }
        }
        "ExternalName" => text(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// `80/TCP,443:30443/TCP`, or `<none>`.
fn ports(svc: &Value) -> String {
    let pieces: Vec<String> = list(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = text_or(p, "/protocol", "TCP");
            match int(p, "/nodePort") {
                0 => format!("{}/{protocol}", int(p, "/port")),
                node_port => format!("{}:{node_port}/{protocol}", int(p, "/port")),
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".to_string()
    } else {
        pieces.join(",")
    }
}

pub(super) fn service(svc: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        text(svc, "/metadata/name").into(),
        text_or(svc, "/spec/type", "ClusterIP").into(),
        text_or(svc, "/spec/clusterIPs/0", "<none>").into(),
        external_ip(svc).into(),
        ports(svc).into(),
        since(svc, "/metadata/creationTimestamp", now).into(),
        labels(svc.pointer("/spec/selector")).into(),
    ]
}

/// Up to three `ip:port` endpoints and how many more there are.
fn endpoints_cell(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut shown: Vec<String> = Vec::new();
    let mut total = 0usize;
    for subset in subsets {
        let addresses = list(subset, "/addresses");
        let ports = list(subset, "/ports");
        // Headless services may have addresses without ports.
        if ports.is_empty() {
            total += addresses.len();
            shown.extend(
                addresses
                    .iter()
                    .take(MAX.saturating_sub(shown.len()))
                    .map(|a| text(a, "/ip").to_string()),
            );
            continue;
        }
        for port in ports {
            total += addresses.len();
            for address in addresses.iter().take(MAX.saturating_sub(shown.len())) {
                let ip = text(address, "/ip");
                // net.JoinHostPort brackets IPv6 addresses.
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                shown.push(format!("{host}:{}", int(port, "/port")));
            }
        }
    }
    let joined = shown.join(",");
    if total > MAX {
        format!("{joined} + {} more...", total - MAX)
    } else {
        joined
    }
}

pub(super) fn endpoints(ep: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        text(ep, "/metadata/name").into(),
        endpoints_cell(ep).into(),
        since(ep, "/metadata/creationTimestamp", now).into(),
    ]
}

pub(super) fn config_map(cm: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        text(cm, "/metadata/name").into(),
        (count(cm, "/data") + count(cm, "/binaryData")).into(),
        since(cm, "/metadata/creationTimestamp", now).into(),
    ]
}

pub(super) fn secret(s: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        text(s, "/metadata/name").into(),
        text(s, "/type").into(),
        count(s, "/data").into(),
        since(s, "/metadata/creationTimestamp", now).into(),
    ]
}

pub(super) fn service_account(sa: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        text(sa, "/metadata/name").into(),
        count(sa, "/secrets").into(),
        since(sa, "/metadata/creationTimestamp", now).into(),
    ]
}

/// An Event's time cell from a (micro)timestamp field, or `None` when unset.
fn event_time(ev: &Value, pointer: &str, now: Timestamp) -> Option<String> {
    timestamp(ev, pointer).map(|t| super::format::human_duration_between(t, now))
}

pub(super) fn event(ev: &Value, now: Timestamp) -> Vec<Value> {
    let unknown = || "<unknown>".to_string();
    let first_seen = event_time(ev, "/firstTimestamp", now)
        .or_else(|| event_time(ev, "/eventTime", now))
        .unwrap_or_else(unknown);
    let mut last_seen = event_time(ev, "/lastTimestamp", now).unwrap_or_else(|| first_seen.clone());
    let mut occurrences = int(ev, "/count");
    if ev.get("series").is_some_and(Value::is_object) {
        last_seen = event_time(ev, "/series/lastObservedTime", now).unwrap_or_else(unknown);
        occurrences = int(ev, "/series/count");
    } else if occurrences == 0 {
        // Events of the events.k8s.io API leave the count unset for singletons.
        occurrences = 1;
    }
    let kind = text(ev, "/involvedObject/kind").to_lowercase();
    let target = match text(ev, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = text_or(ev, "/source/component", text(ev, "/reportingComponent"));
    let instance = text_or(ev, "/source/host", text(ev, "/reportingInstance"));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last_seen.into(),
        text(ev, "/type").into(),
        text(ev, "/reason").into(),
        target.into(),
        text(ev, "/involvedObject/fieldPath").into(),
        source.into(),
        text(ev, "/message").trim().into(),
        first_seen.into(),
        occurrences.into(),
        text(ev, "/metadata/name").into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap_or_default()
    }

    #[test]
    fn service_prints_type_addresses_and_ports() {
        let svc = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"], "selector": {"app": "web"},
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]},
        });
        assert_eq!(
            service(&svc, now()),
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("60m"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn load_balancer_is_pending_until_it_has_an_address() {
        let mut svc = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(external_ip(&svc), "<pending>");
        svc["status"] =
            json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}, {"hostname": "lb.example"}]}});
        svc["spec"]["externalIPs"] = json!(["198.51.100.1"]);
        assert_eq!(external_ip(&svc), "192.0.2.7,lb.example,198.51.100.1");
        let named = json!({"spec": {"type": "ExternalName", "externalName": "db.example"}});
        assert_eq!(external_ip(&named), "db.example");
    }

    #[test]
    fn endpoints_show_three_and_count_the_rest() {
        let ep = json!({"subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 8080}],
        }]});
        assert_eq!(
            endpoints_cell(&ep),
            "10.0.0.1:8080,10.0.0.2:8080,[fd00::3]:8080 + 1 more..."
        );
        assert_eq!(endpoints_cell(&json!({})), "<none>");
        let headless = json!({"subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]});
        assert_eq!(endpoints_cell(&headless), "10.0.0.9");
    }

    #[test]
    fn config_counts_include_binary_data() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(config_map(&cm, now())[1], 3);
        let s = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}});
        assert_eq!(secret(&s, now())[1..3], [json!("Opaque"), json!(1)]);
        let sa = json!({"metadata": {"name": "default"}});
        assert_eq!(service_account(&sa, now())[1], 0);
    }

    #[test]
    fn event_row_names_its_object() {
        let ev = json!({
            "metadata": {"name": "web.17a"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
            "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container \n",
            "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:59:30Z", "count": 7,
            "source": {"component": "kubelet", "host": "n1"},
        });
        assert_eq!(
            event(&ev, now()),
            vec![
                json!("30s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web"),
                json!("spec.containers{web}"),
                json!("kubelet, n1"),
                json!("Back-off restarting failed container"),
                json!("10m"),
                json!(7),
                json!("web.17a")
            ]
        );
        let singleton = json!({"involvedObject": {"kind": "Node"}, "eventTime": "2024-05-01T11:59:00.123456Z",
            "reportingComponent": "scheduler"});
        let cells = event(&singleton, now());
        // 59.88 seconds ago: durations truncate to whole seconds.
        assert_eq!(cells[0], "59s");
        assert_eq!(cells[3], "node");
        assert_eq!(cells[5], "scheduler");
        assert_eq!(cells[8], 1);
    }
}
