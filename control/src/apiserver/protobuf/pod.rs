//! Conversions of Pod, PodTemplateSpec and PodSpec with its scheduling
//! parts (affinity, tolerations, topology spread, DNS).

use k8s_pb::api::core::v1 as core;

use super::container::{container, local_object_reference, resource_requirements};
use super::convert::{Conv, Obj, reject, reject_list, reject_nonzero};
use super::meta::{label_selector, object_meta};
use super::security::pod_security_context;
use super::volume::volume;

pub(super) fn pod(p: core::Pod) -> Conv {
    let core::Pod {
        metadata,
        spec,
        status,
    } = p;
    // Status is written by the node, never taken from a create.
    reject_nonzero("status", &status)?;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .msg("spec", spec, pod_spec)?
        .done())
}

pub(super) fn pod_template_spec(t: core::PodTemplateSpec) -> Conv {
    let core::PodTemplateSpec { metadata, spec } = t;
    Ok(Obj::new()
        .msg("metadata", metadata, object_meta)?
        .msg("spec", spec, pod_spec)?
        .done())
}

fn pod_spec(s: core::PodSpec) -> Conv {
    let core::PodSpec {
        volumes,
        init_containers,
        containers,
        ephemeral_containers,
        restart_policy,
        termination_grace_period_seconds,
        active_deadline_seconds,
        dns_policy,
        node_selector,
        service_account_name,
        service_account,
        automount_service_account_token,
        node_name,
        host_network,
        host_pid,
        host_ipc,
        share_process_namespace,
        security_context,
        image_pull_secrets,
        hostname,
        subdomain,
        affinity,
        scheduler_name,
        tolerations,
        host_aliases,
        priority_class_name,
        priority,
        dns_config,
        readiness_gates,
        runtime_class_name,
        enable_service_links,
        preemption_policy,
        overhead,
        topology_spread_constraints,
        set_hostname_as_fqdn,
        os,
        host_users,
        scheduling_gates,
        resource_claims,
        resources,
        hostname_override,
        workload_ref,
    } = s;
    // Ephemeral containers are added through their own subresource.
    reject_list("ephemeralContainers", &ephemeral_containers)?;
    // Newer than the API version this server serves.
    reject("hostnameOverride", &hostname_override)?;
    reject("workloadRef", &workload_ref)?;
    Ok(Obj::new()
        .list("volumes", volumes, volume)?
        .list("initContainers", init_containers, container)?
        .list("containers", containers, container)?
        .str("restartPolicy", restart_policy)
        .opt_int(
            "terminationGracePeriodSeconds",
            termination_grace_period_seconds,
        )
        .opt_int("activeDeadlineSeconds", active_deadline_seconds)
        .str("dnsPolicy", dns_policy)
        .map("nodeSelector", node_selector)
        .str("serviceAccountName", service_account_name)
        .str("serviceAccount", service_account)
        .opt_bool(
            "automountServiceAccountToken",
            automount_service_account_token,
        )
        .str("nodeName", node_name)
        .flag("hostNetwork", host_network)
        .flag("hostPID", host_pid)
        .flag("hostIPC", host_ipc)
        .opt_bool("shareProcessNamespace", share_process_namespace)
        .ptr("securityContext", security_context, pod_security_context)?
        .list(
            "imagePullSecrets",
            image_pull_secrets,
            local_object_reference,
        )?
        .str("hostname", hostname)
        .str("subdomain", subdomain)
        .ptr("affinity", affinity, self::affinity)?
        .str("schedulerName", scheduler_name)
        .list("tolerations", tolerations, toleration)?
        .list("hostAliases", host_aliases, |a| {
            let core::HostAlias { ip, hostnames } = a;
            Ok(Obj::new().str("ip", ip).strs("hostnames", hostnames).done())
        })?
        .str("priorityClassName", priority_class_name)
        .opt_int("priority", priority)
        .ptr("dnsConfig", dns_config, |d| {
            let core::PodDnsConfig {
                nameservers,
                searches,
                options,
            } = d;
            Ok(Obj::new()
                .strs("nameservers", nameservers)
                .strs("searches", searches)
                .list("options", options, |o| {
                    let core::PodDnsConfigOption { name, value } = o;
                    Ok(Obj::new().str("name", name).opt_str("value", value).done())
                })?
                .done())
        })?
        .list("readinessGates", readiness_gates, |g| {
            let core::PodReadinessGate { condition_type } = g;
            Ok(Obj::new().str("conditionType", condition_type).done())
        })?
        .opt_str("runtimeClassName", runtime_class_name)
        .opt_bool("enableServiceLinks", enable_service_links)
        .opt_str("preemptionPolicy", preemption_policy)
        .quantities("overhead", overhead)
        .list(
            "topologySpreadConstraints",
            topology_spread_constraints,
            topology_spread_constraint,
        )?
        .opt_bool("setHostnameAsFQDN", set_hostname_as_fqdn)
        .ptr("os", os, |o| {
            let core::PodOs { name } = o;
            Ok(Obj::new().str("name", name).done())
        })?
        .opt_bool("hostUsers", host_users)
        .list("schedulingGates", scheduling_gates, |g| {
            let core::PodSchedulingGate { name } = g;
            Ok(Obj::new().str("name", name).done())
        })?
        .list("resourceClaims", resource_claims, |c| {
            let core::PodResourceClaim {
                name,
                resource_claim_name,
                resource_claim_template_name,
            } = c;
            Ok(Obj::new()
                .str("name", name)
                .opt_str("resourceClaimName", resource_claim_name)
                .opt_str("resourceClaimTemplateName", resource_claim_template_name)
                .done())
        })?
        .ptr("resources", resources, resource_requirements)?
        .done())
}

fn toleration(t: core::Toleration) -> Conv {
    let core::Toleration {
        key,
        operator,
        value,
        effect,
        toleration_seconds,
    } = t;
    Ok(Obj::new()
        .str("key", key)
        .str("operator", operator)
        .str("value", value)
        .str("effect", effect)
        .opt_int("tolerationSeconds", toleration_seconds)
        .done())
}

fn topology_spread_constraint(c: core::TopologySpreadConstraint) -> Conv {
    let core::TopologySpreadConstraint {
        max_skew,
        topology_key,
        when_unsatisfiable,
        label_selector: selector,
        min_domains,
        node_affinity_policy,
        node_taints_policy,
        match_label_keys,
    } = c;
    Ok(Obj::new()
        // Required, so written even when zero.
        .opt_int("maxSkew", Some(max_skew.unwrap_or(0)))
        .str("topologyKey", topology_key)
        .str("whenUnsatisfiable", when_unsatisfiable)
        .ptr("labelSelector", selector, label_selector)?
        .opt_int("minDomains", min_domains)
        .opt_str("nodeAffinityPolicy", node_affinity_policy)
        .opt_str("nodeTaintsPolicy", node_taints_policy)
        .strs("matchLabelKeys", match_label_keys)
        .done())
}

fn affinity(a: core::Affinity) -> Conv {
    let core::Affinity {
        node_affinity,
        pod_affinity,
        pod_anti_affinity,
    } = a;
    Ok(Obj::new()
        .ptr("nodeAffinity", node_affinity, |n| {
            let core::NodeAffinity {
                required_during_scheduling_ignored_during_execution: required,
                preferred_during_scheduling_ignored_during_execution: preferred,
            } = n;
            Ok(Obj::new()
                .ptr(
                    "requiredDuringSchedulingIgnoredDuringExecution",
                    required,
                    |s| {
                        let core::NodeSelector {
                            node_selector_terms,
                        } = s;
                        Ok(Obj::new()
                            .list("nodeSelectorTerms", node_selector_terms, node_selector_term)?
                            .done())
                    },
                )?
                .list(
                    "preferredDuringSchedulingIgnoredDuringExecution",
                    preferred,
                    |p| {
                        let core::PreferredSchedulingTerm { weight, preference } = p;
                        Ok(Obj::new()
                            .opt_int("weight", Some(weight.unwrap_or(0)))
                            .ptr(
                                "preference",
                                Some(preference.unwrap_or_default()),
                                node_selector_term,
                            )?
                            .done())
                    },
                )?
                .done())
        })?
        .ptr("podAffinity", pod_affinity, |p| {
            let core::PodAffinity {
                required_during_scheduling_ignored_during_execution: required,
                preferred_during_scheduling_ignored_during_execution: preferred,
            } = p;
            pod_affinity_terms(required, preferred)
        })?
        .ptr("podAntiAffinity", pod_anti_affinity, |p| {
            let core::PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: required,
                preferred_during_scheduling_ignored_during_execution: preferred,
            } = p;
            pod_affinity_terms(required, preferred)
        })?
        .done())
}

fn node_selector_term(t: core::NodeSelectorTerm) -> Conv {
    let core::NodeSelectorTerm {
        match_expressions,
        match_fields,
    } = t;
    Ok(Obj::new()
        .list(
            "matchExpressions",
            match_expressions,
            node_selector_requirement,
        )?
        .list("matchFields", match_fields, node_selector_requirement)?
        .done())
}

fn node_selector_requirement(r: core::NodeSelectorRequirement) -> Conv {
    let core::NodeSelectorRequirement {
        key,
        operator,
        values,
    } = r;
    Ok(Obj::new()
        .str("key", key)
        .str("operator", operator)
        .strs("values", values)
        .done())
}

fn pod_affinity_terms(
    required: Vec<core::PodAffinityTerm>,
    preferred: Vec<core::WeightedPodAffinityTerm>,
) -> Conv {
    Ok(Obj::new()
        .list(
            "requiredDuringSchedulingIgnoredDuringExecution",
            required,
            pod_affinity_term,
        )?
        .list(
            "preferredDuringSchedulingIgnoredDuringExecution",
            preferred,
            |w| {
                let core::WeightedPodAffinityTerm {
                    weight,
                    pod_affinity_term: term,
                } = w;
                Ok(Obj::new()
                    .opt_int("weight", Some(weight.unwrap_or(0)))
                    .ptr(
                        "podAffinityTerm",
                        Some(term.unwrap_or_default()),
                        pod_affinity_term,
                    )?
                    .done())
            },
        )?
        .done())
}

fn pod_affinity_term(t: core::PodAffinityTerm) -> Conv {
    let core::PodAffinityTerm {
        label_selector: selector,
        namespaces,
        topology_key,
        namespace_selector,
        match_label_keys,
        mismatch_label_keys,
    } = t;
    Ok(Obj::new()
        .ptr("labelSelector", selector, label_selector)?
        .strs("namespaces", namespaces)
        .str("topologyKey", topology_key)
        .ptr("namespaceSelector", namespace_selector, label_selector)?
        .strs("matchLabelKeys", match_label_keys)
        .strs("mismatchLabelKeys", mismatch_label_keys)
        .done())
}

#[cfg(test)]
mod tests {
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use serde_json::json;

    use std::collections::BTreeMap;

    use k8s_pb::apimachinery::pkg::api::resource::Quantity;

    use super::*;
    use crate::apiserver::protobuf::convert::FieldError;
    use crate::apiserver::protobuf::tests::{
        decoded, go_container, go_meta, go_pod_spec, labels, roundtrip, s,
    };

    fn selector(key: &str, value: &str) -> Option<meta::LabelSelector> {
        Some(meta::LabelSelector {
            match_labels: labels(&[(key, value)]),
            match_expressions: vec![],
        })
    }

    fn node_term(key: &str) -> core::NodeSelectorTerm {
        core::NodeSelectorTerm {
            match_expressions: vec![core::NodeSelectorRequirement {
                key: s(key),
                operator: s("In"),
                values: vec!["a".into()],
            }],
            match_fields: vec![core::NodeSelectorRequirement {
                key: s("metadata.name"),
                operator: s("NotIn"),
                values: vec!["n0".into()],
            }],
        }
    }

    fn pod_term(topology: &str) -> core::PodAffinityTerm {
        core::PodAffinityTerm {
            label_selector: selector("app", "db"),
            namespaces: vec!["data".into()],
            topology_key: s(topology),
            namespace_selector: selector("team", "x"),
            match_label_keys: vec!["version".into()],
            mismatch_label_keys: vec!["tenant".into()],
        }
    }

    /// A pod spec with every field this module converts set to a non-zero
    /// value; containers and volumes have their own tests.
    fn full_pod_spec() -> core::PodSpec {
        core::PodSpec {
            volumes: vec![core::Volume {
                name: s("scratch"),
                volume_source: Some(core::VolumeSource {
                    empty_dir: Some(Default::default()),
                    ..Default::default()
                }),
            }],
            init_containers: vec![go_container("init", "init:1", &[])],
            containers: vec![go_container("app", "app:1", &[])],
            ephemeral_containers: vec![],
            restart_policy: s("OnFailure"),
            termination_grace_period_seconds: Some(0),
            active_deadline_seconds: Some(60),
            dns_policy: s("None"),
            node_selector: labels(&[("disk", "ssd")]),
            service_account_name: s("runner"),
            service_account: s("runner"),
            automount_service_account_token: Some(false),
            node_name: s("n1"),
            host_network: Some(true),
            host_pid: Some(true),
            host_ipc: Some(true),
            share_process_namespace: Some(false),
            security_context: Some(core::PodSecurityContext {
                run_as_user: Some(0),
                ..Default::default()
            }),
            image_pull_secrets: vec![core::LocalObjectReference {
                name: s("registry"),
            }],
            hostname: s("box"),
            subdomain: s("svc"),
            affinity: Some(core::Affinity {
                node_affinity: Some(core::NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(core::NodeSelector {
                        node_selector_terms: vec![node_term("zone")],
                    }),
                    preferred_during_scheduling_ignored_during_execution: vec![
                        core::PreferredSchedulingTerm {
                            weight: Some(10),
                            preference: Some(node_term("rack")),
                        },
                    ],
                }),
                pod_affinity: Some(core::PodAffinity {
                    required_during_scheduling_ignored_during_execution: vec![pod_term("zone")],
                    preferred_during_scheduling_ignored_during_execution: vec![],
                }),
                pod_anti_affinity: Some(core::PodAntiAffinity {
                    required_during_scheduling_ignored_during_execution: vec![],
                    preferred_during_scheduling_ignored_during_execution: vec![
                        core::WeightedPodAffinityTerm {
                            weight: Some(50),
                            pod_affinity_term: Some(pod_term("host")),
                        },
                    ],
                }),
            }),
            scheduler_name: s("default-scheduler"),
            tolerations: vec![core::Toleration {
                key: s("dedicated"),
                operator: s("Equal"),
                value: s("wasm"),
                effect: s("NoExecute"),
                toleration_seconds: Some(0),
            }],
            host_aliases: vec![core::HostAlias {
                ip: s("10.0.0.1"),
                hostnames: vec!["db".into()],
            }],
            priority_class_name: s("high"),
            priority: Some(0),
            dns_config: Some(core::PodDnsConfig {
                nameservers: vec!["1.1.1.1".into()],
                searches: vec!["svc.local".into()],
                options: vec![core::PodDnsConfigOption {
                    name: s("ndots"),
                    value: s("2"),
                }],
            }),
            readiness_gates: vec![core::PodReadinessGate {
                condition_type: s("example.com/ready"),
            }],
            runtime_class_name: s("wasm"),
            enable_service_links: Some(false),
            preemption_policy: s("Never"),
            overhead: BTreeMap::from([("cpu".into(), Quantity { string: s("10m") })]),
            topology_spread_constraints: vec![core::TopologySpreadConstraint {
                max_skew: Some(1),
                topology_key: s("zone"),
                when_unsatisfiable: s("DoNotSchedule"),
                label_selector: selector("app", "web"),
                min_domains: Some(2),
                node_affinity_policy: s("Honor"),
                node_taints_policy: s("Ignore"),
                match_label_keys: vec!["pod-template-hash".into()],
            }],
            set_hostname_as_fqdn: Some(true),
            os: Some(core::PodOs { name: s("linux") }),
            host_users: Some(false),
            scheduling_gates: vec![core::PodSchedulingGate {
                name: s("example.com/gate"),
            }],
            resource_claims: vec![core::PodResourceClaim {
                name: s("gpu"),
                resource_claim_name: s("gpu-claim"),
                resource_claim_template_name: None,
            }],
            resources: Some(core::ResourceRequirements {
                limits: BTreeMap::from([("memory".into(), Quantity { string: s("1Gi") })]),
                ..Default::default()
            }),
            hostname_override: None,
            workload_ref: None,
        }
    }

    fn term_json(key: &str) -> serde_json::Value {
        json!({
            "matchExpressions": [{"key": key, "operator": "In", "values": ["a"]}],
            "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n0"]}]
        })
    }

    fn pod_term_json(topology: &str) -> serde_json::Value {
        json!({
            "labelSelector": {"matchLabels": {"app": "db"}},
            "namespaces": ["data"],
            "topologyKey": topology,
            "namespaceSelector": {"matchLabels": {"team": "x"}},
            "matchLabelKeys": ["version"],
            "mismatchLabelKeys": ["tenant"]
        })
    }

    #[test]
    fn every_pod_spec_field_converts_and_round_trips() {
        let pod = core::Pod {
            metadata: Some(go_meta("full")),
            spec: Some(full_pod_spec()),
            status: None,
        };
        let affinity = json!({
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term_json("zone")]},
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": term_json("rack")}]
            },
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [pod_term_json("zone")]},
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": pod_term_json("host")}]
            }
        });
        let spread = json!([{
            "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}, "minDomains": 2,
            "nodeAffinityPolicy": "Honor", "nodeTaintsPolicy": "Ignore", "matchLabelKeys": ["pod-template-hash"]
        }]);
        let mut spec = json!({
                "volumes": [{"name": "scratch", "emptyDir": {}}],
                "initContainers": [{"name": "init", "image": "init:1"}],
                "containers": [{"name": "app", "image": "app:1"}],
                "restartPolicy": "OnFailure",
                "terminationGracePeriodSeconds": 0,
                "activeDeadlineSeconds": 60,
                "dnsPolicy": "None",
                "nodeSelector": {"disk": "ssd"},
                "serviceAccountName": "runner",
                "serviceAccount": "runner",
                "automountServiceAccountToken": false,
                "nodeName": "n1",
                "hostNetwork": true,
                "hostPID": true,
                "hostIPC": true,
                "shareProcessNamespace": false,
                "securityContext": {"runAsUser": 0},
                "imagePullSecrets": [{"name": "registry"}],
                "hostname": "box",
                "subdomain": "svc",
                "affinity": affinity
        });
        let rest = json!({
                "schedulerName": "default-scheduler",
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "wasm", "effect": "NoExecute", "tolerationSeconds": 0}],
                "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}],
                "priorityClassName": "high",
                "priority": 0,
                "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["svc.local"], "options": [{"name": "ndots", "value": "2"}]},
                "readinessGates": [{"conditionType": "example.com/ready"}],
                "runtimeClassName": "wasm",
                "enableServiceLinks": false,
                "preemptionPolicy": "Never",
                "overhead": {"cpu": "10m"},
                "topologySpreadConstraints": spread,
                "setHostnameAsFQDN": true,
                "os": {"name": "linux"},
                "hostUsers": false,
                "schedulingGates": [{"name": "example.com/gate"}],
                "resourceClaims": [{"name": "gpu", "resourceClaimName": "gpu-claim"}],
                "resources": {"limits": {"memory": "1Gi"}}
        });
        if let (Some(spec), serde_json::Value::Object(rest)) = (spec.as_object_mut(), rest) {
            spec.extend(rest);
        }
        let expected =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "full"}, "spec": spec});
        assert_eq!(decoded("v1", "Pod", &pod), Ok(expected.clone()));
        assert_eq!(
            roundtrip::<k8s_openapi::api::core::v1::Pod>(&expected),
            expected
        );
    }

    #[test]
    fn pod_spec_fields_outside_the_served_api_are_refused_by_name() {
        let spec = core::PodSpec {
            hostname_override: s("h"),
            ..full_pod_spec()
        };
        assert_eq!(
            pod_spec(spec),
            Err(FieldError::unsupported("hostnameOverride"))
        );
        let spec = core::PodSpec {
            ephemeral_containers: vec![Default::default()],
            ..full_pod_spec()
        };
        assert_eq!(
            pod_spec(spec),
            Err(FieldError::unsupported("ephemeralContainers"))
        );
    }

    #[test]
    fn kubectl_run_pod() {
        let mut c = go_container("p", "file:///x.wasm", &[80]);
        c.env = vec![core::EnvVar {
            name: s("A"),
            value: s("1"),
            value_from: None,
        }];
        let pod = core::Pod {
            metadata: Some(meta::ObjectMeta {
                labels: labels(&[("run", "p")]),
                ..go_meta("p")
            }),
            spec: Some(core::PodSpec {
                dns_policy: s("ClusterFirst"),
                ..go_pod_spec(vec![c], "Always")
            }),
            status: Some(core::PodStatus {
                phase: s(""),
                message: s(""),
                reason: s(""),
                host_ip: s(""),
                pod_ip: s(""),
                ..Default::default()
            }),
        };
        assert_eq!(
            decoded("v1", "Pod", &pod),
            Ok(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "labels": {"run": "p"}},
                "spec": {
                    "containers": [{
                        "name": "p", "image": "file:///x.wasm",
                        "env": [{"name": "A", "value": "1"}],
                        "ports": [{"containerPort": 80}]
                    }],
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"
                }
            }))
        );
    }
}
