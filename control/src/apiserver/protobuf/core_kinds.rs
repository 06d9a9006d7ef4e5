//! Conversions of the core/v1 kinds without pods inside: Namespace,
//! ConfigMap, Secret, ServiceAccount and Service.

use k8s_pb::api::core::v1 as core;

use super::container::local_object_reference;
use super::convert::{Conv, Obj, reject_nonzero};
use super::meta::object_meta;

pub(super) fn namespace(n: core::Namespace) -> Conv {
    let core::Namespace {
        metadata,
        spec,
        status,
    } = n;
    // The phase is the server's to set.
    reject_nonzero("status", &status)?;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .msg("spec", spec, |s| {
            let core::NamespaceSpec { finalizers } = s;
            Ok(Obj::new().strs("finalizers", finalizers).done())
        })?
        .done())
}

pub(super) fn config_map(c: core::ConfigMap) -> Conv {
    let core::ConfigMap {
        metadata,
        immutable,
        data,
        binary_data,
    } = c;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .opt_bool("immutable", immutable)
        .map("data", data)
        .bytes_map("binaryData", binary_data)
        .done())
}

pub(super) fn secret(s: core::Secret) -> Conv {
    let core::Secret {
        metadata,
        immutable,
        data,
        string_data,
        r#type,
    } = s;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .opt_bool("immutable", immutable)
        .bytes_map("data", data)
        .map("stringData", string_data)
        .str("type", r#type)
        .done())
}

pub(super) fn service_account(a: core::ServiceAccount) -> Conv {
    let core::ServiceAccount {
        metadata,
        secrets,
        image_pull_secrets,
        automount_service_account_token,
    } = a;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .list("secrets", secrets, object_reference)?
        .list(
            "imagePullSecrets",
            image_pull_secrets,
            local_object_reference,
        )?
        .opt_bool(
            "automountServiceAccountToken",
            automount_service_account_token,
        )
        .done())
}

fn object_reference(r: core::ObjectReference) -> Conv {
    let core::ObjectReference {
        kind,
        namespace,
        name,
        uid,
        api_version,
        resource_version,
        field_path,
    } = r;
    Ok(Obj::new()
        .str("kind", kind)
        .str("namespace", namespace)
        .str("name", name)
        .str("uid", uid)
        .str("apiVersion", api_version)
        .str("resourceVersion", resource_version)
        .str("fieldPath", field_path)
        .done())
}

pub(super) fn service(s: core::Service) -> Conv {
    let core::Service {
        metadata,
        spec,
        status,
    } = s;
    // Load-balancer status is the server's to set.
    reject_nonzero("status", &status)?;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .msg("spec", spec, service_spec)?
        .done())
}

fn service_spec(s: core::ServiceSpec) -> Conv {
    let core::ServiceSpec {
        ports,
        selector,
        cluster_ip,
        cluster_ips,
        r#type,
        external_ips,
        session_affinity,
        load_balancer_ip,
        load_balancer_source_ranges,
        external_name,
        external_traffic_policy,
        health_check_node_port,
        publish_not_ready_addresses,
        session_affinity_config,
        ip_families,
        ip_family_policy,
        allocate_load_balancer_node_ports,
        load_balancer_class,
        internal_traffic_policy,
        traffic_distribution,
    } = s;
    Ok(Obj::new()
        .list("ports", ports, service_port)?
        .map("selector", selector)
        .str("clusterIP", cluster_ip)
        .strs("clusterIPs", cluster_ips)
        .str("type", r#type)
        .strs("externalIPs", external_ips)
        .str("sessionAffinity", session_affinity)
        .str("loadBalancerIP", load_balancer_ip)
        .strs("loadBalancerSourceRanges", load_balancer_source_ranges)
        .str("externalName", external_name)
        .str("externalTrafficPolicy", external_traffic_policy)
        .int("healthCheckNodePort", health_check_node_port)
        .flag("publishNotReadyAddresses", publish_not_ready_addresses)
        .ptr("sessionAffinityConfig", session_affinity_config, |c| {
            let core::SessionAffinityConfig { client_ip } = c;
            Ok(Obj::new()
                .ptr("clientIP", client_ip, |c| {
                    let core::ClientIpConfig { timeout_seconds } = c;
                    Ok(Obj::new().opt_int("timeoutSeconds", timeout_seconds).done())
                })?
                .done())
        })?
        .strs("ipFamilies", ip_families)
        .opt_str("ipFamilyPolicy", ip_family_policy)
        .opt_bool(
            "allocateLoadBalancerNodePorts",
            allocate_load_balancer_node_ports,
        )
        .opt_str("loadBalancerClass", load_balancer_class)
        .opt_str("internalTrafficPolicy", internal_traffic_policy)
        .opt_str("trafficDistribution", traffic_distribution)
        .done())
}

fn service_port(p: core::ServicePort) -> Conv {
    let core::ServicePort {
        name,
        protocol,
        app_protocol,
        port,
        target_port,
        node_port,
    } = p;
    Ok(Obj::new()
        .str("name", name)
        .str("protocol", protocol)
        .opt_str("appProtocol", app_protocol)
        // Required, so written even when zero.
        .opt_int("port", Some(port.unwrap_or(0)))
        .int_or_string("targetPort", target_port)?
        .int("nodePort", node_port)
        .done())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;

    use crate::apiserver::protobuf::tests::{decoded, go_meta, labels, s};

    #[test]
    fn kubectl_create_namespace() {
        let ns = core::Namespace {
            metadata: Some(go_meta("x")),
            spec: Some(core::NamespaceSpec::default()),
            status: Some(core::NamespaceStatus {
                phase: s(""),
                conditions: vec![],
            }),
        };
        assert_eq!(
            decoded("v1", "Namespace", &ns),
            Ok(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}))
        );
    }

    #[test]
    fn kubectl_create_configmap_keeps_data_and_binary_data() {
        let cm = core::ConfigMap {
            metadata: Some(go_meta("c")),
            immutable: Some(true),
            data: labels(&[("a", "b"), ("empty", "")]),
            binary_data: BTreeMap::from([("bin".to_string(), vec![0, 1, 2, 255])]),
        };
        assert_eq!(
            decoded("v1", "ConfigMap", &cm),
            Ok(json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                "immutable": true, "data": {"a": "b", "empty": ""}, "binaryData": {"bin": "AAEC/w=="}
            }))
        );
    }

    #[test]
    fn kubectl_create_secret_generic_and_tls() {
        let generic = core::Secret {
            metadata: Some(go_meta("s")),
            data: BTreeMap::from([("p".to_string(), b"q".to_vec())]),
            string_data: labels(&[("plain", "text")]),
            r#type: s(""),
            immutable: None,
        };
        assert_eq!(
            decoded("v1", "Secret", &generic),
            Ok(json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                "data": {"p": "cQ=="}, "stringData": {"plain": "text"}
            }))
        );
        let tls = core::Secret {
            metadata: Some(go_meta("t")),
            data: BTreeMap::from([
                ("tls.crt".to_string(), b"C".to_vec()),
                ("tls.key".to_string(), b"K".to_vec()),
            ]),
            r#type: s("kubernetes.io/tls"),
            immutable: Some(false),
            ..Default::default()
        };
        assert_eq!(
            decoded("v1", "Secret", &tls),
            Ok(json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "immutable": false,
                "type": "kubernetes.io/tls", "data": {"tls.crt": "Qw==", "tls.key": "Sw=="}
            }))
        );
    }

    #[test]
    fn kubectl_create_serviceaccount() {
        let sa = core::ServiceAccount {
            metadata: Some(go_meta("sa")),
            automount_service_account_token: Some(false),
            image_pull_secrets: vec![core::LocalObjectReference {
                name: s("registry"),
            }],
            ..Default::default()
        };
        assert_eq!(
            decoded("v1", "ServiceAccount", &sa),
            Ok(json!({
                "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"},
                "automountServiceAccountToken": false, "imagePullSecrets": [{"name": "registry"}]
            }))
        );
    }

    #[test]
    fn kubectl_create_service_nodeport() {
        let svc = core::Service {
            metadata: Some(meta::ObjectMeta {
                labels: labels(&[("app", "np")]),
                ..go_meta("np")
            }),
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    name: s("80-8080"),
                    protocol: s("TCP"),
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: s(""),
                    }),
                    node_port: Some(0),
                    app_protocol: None,
                }],
                selector: labels(&[("app", "np")]),
                cluster_ip: s(""),
                r#type: s("NodePort"),
                session_affinity: s(""),
                load_balancer_ip: s(""),
                external_name: s(""),
                external_traffic_policy: s(""),
                health_check_node_port: Some(0),
                publish_not_ready_addresses: Some(false),
                ..Default::default()
            }),
            status: Some(core::ServiceStatus {
                load_balancer: Some(Default::default()),
                conditions: vec![],
            }),
        };
        assert_eq!(
            decoded("v1", "Service", &svc),
            Ok(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "np", "labels": {"app": "np"}},
                "spec": {
                    "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                    "selector": {"app": "np"},
                    "type": "NodePort"
                }
            }))
        );
    }

    #[test]
    fn kubectl_create_service_clusterip_headless_with_named_target_port() {
        let svc = core::Service {
            metadata: Some(go_meta("h")),
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    name: s("web"),
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("http"),
                    }),
                    ..Default::default()
                }],
                cluster_ip: s("None"),
                cluster_ips: vec!["None".into()],
                r#type: s("ClusterIP"),
                session_affinity: s("ClientIP"),
                session_affinity_config: Some(core::SessionAffinityConfig {
                    client_ip: Some(core::ClientIpConfig {
                        timeout_seconds: Some(60),
                    }),
                }),
                ip_family_policy: s("SingleStack"),
                ..Default::default()
            }),
            status: None,
        };
        assert_eq!(
            decoded("v1", "Service", &svc),
            Ok(json!({
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "h"},
                "spec": {
                    "ports": [{"name": "web", "port": 80, "targetPort": "http"}],
                    "clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP",
                    "sessionAffinity": "ClientIP",
                    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
                    "ipFamilyPolicy": "SingleStack"
                }
            }))
        );
    }

    #[test]
    fn every_service_spec_field_converts() {
        let svc = core::Service {
            metadata: Some(go_meta("lb")),
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    name: s("https"),
                    protocol: s("TCP"),
                    app_protocol: s("https"),
                    port: Some(443),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(8443),
                        str_val: s(""),
                    }),
                    node_port: Some(30443),
                }],
                selector: labels(&[("app", "web")]),
                cluster_ip: s("10.96.0.10"),
                cluster_ips: vec!["10.96.0.10".into()],
                r#type: s("LoadBalancer"),
                external_ips: vec!["192.0.2.1".into()],
                session_affinity: s("None"),
                load_balancer_ip: s("192.0.2.2"),
                load_balancer_source_ranges: vec!["192.0.2.0/24".into()],
                external_name: s("web.example.com"),
                external_traffic_policy: s("Local"),
                health_check_node_port: Some(32000),
                publish_not_ready_addresses: Some(true),
                session_affinity_config: None,
                ip_families: vec!["IPv4".into()],
                ip_family_policy: s("SingleStack"),
                allocate_load_balancer_node_ports: Some(false),
                load_balancer_class: s("example.com/lb"),
                internal_traffic_policy: s("Local"),
                traffic_distribution: s("PreferClose"),
            }),
            status: None,
        };
        assert_eq!(
            decoded("v1", "Service", &svc).map(|v| v["spec"].clone()),
            Ok(json!({
                "ports": [{"name": "https", "protocol": "TCP", "appProtocol": "https", "port": 443, "targetPort": 8443, "nodePort": 30443}],
                "selector": {"app": "web"},
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "type": "LoadBalancer",
                "externalIPs": ["192.0.2.1"],
                "sessionAffinity": "None",
                "loadBalancerIP": "192.0.2.2",
                "loadBalancerSourceRanges": ["192.0.2.0/24"],
                "externalName": "web.example.com",
                "externalTrafficPolicy": "Local",
                "healthCheckNodePort": 32000,
                "publishNotReadyAddresses": true,
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "allocateLoadBalancerNodePorts": false,
                "loadBalancerClass": "example.com/lb",
                "internalTrafficPolicy": "Local",
                "trafficDistribution": "PreferClose"
            }))
        );
    }

    #[test]
    fn a_service_with_load_balancer_status_is_refused() {
        let svc = core::Service {
            metadata: Some(go_meta("lb")),
            spec: None,
            status: Some(core::ServiceStatus {
                load_balancer: Some(core::LoadBalancerStatus {
                    ingress: vec![core::LoadBalancerIngress {
                        ip: s("192.0.2.9"),
                        ..Default::default()
                    }],
                }),
                conditions: vec![],
            }),
        };
        assert_eq!(
            decoded("v1", "Service", &svc).map_err(|(code, _)| code),
            Err(415)
        );
    }
}
