//! Conversions of Pod, PodTemplateSpec and PodSpec with its scheduling
//! parts (affinity, tolerations, topology spread, DNS).

use k8s_pb::api::core::v1 as core;

use super::container::{container, local_object_reference, resource_requirements};
use super::convert::{Conv, Obj, reject, reject_list, reject_nonzero};
use super::meta::{label_selector, object_meta};
use super::security::pod_security_context;
use super::volume::volume;

pub(super) fn pod(p: core::Pod) -> Conv {
    let core::Pod { metadata, spec, status } = p;
    // Status is written by the node, never taken from a create.
    reject_nonzero("status", &status)?;
    Ok(Obj::new().ptr("metadata", metadata, object_meta)?.msg("spec", spec, pod_spec)?.done())
}

pub(super) fn pod_template_spec(t: core::PodTemplateSpec) -> Conv {
    let core::PodTemplateSpec { metadata, spec } = t;
    Ok(Obj::new().msg("metadata", metadata, object_meta)?.msg("spec", spec, pod_spec)?.done())
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
        .opt_int("terminationGracePeriodSeconds", termination_grace_period_seconds)
        .opt_int("activeDeadlineSeconds", active_deadline_seconds)
        .str("dnsPolicy", dns_policy)
        .map("nodeSelector", node_selector)
        .str("serviceAccountName", service_account_name)
        .str("serviceAccount", service_account)
        .opt_bool("automountServiceAccountToken", automount_service_account_token)
        .str("nodeName", node_name)
        .flag("hostNetwork", host_network)
        .flag("hostPID", host_pid)
        .flag("hostIPC", host_ipc)
        .opt_bool("shareProcessNamespace", share_process_namespace)
        .ptr("securityContext", security_context, pod_security_context)?
        .list("imagePullSecrets", image_pull_secrets, local_object_reference)?
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
            let core::PodDnsConfig { nameservers, searches, options } = d;
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
        .list("topologySpreadConstraints", topology_spread_constraints, topology_spread_constraint)?
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
            let core::PodResourceClaim { name, resource_claim_name, resource_claim_template_name } = c;
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
    let core::Toleration { key, operator, value, effect, toleration_seconds } = t;
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
    let core::Affinity { node_affinity, pod_affinity, pod_anti_affinity } = a;
    Ok(Obj::new()
        .ptr("nodeAffinity", node_affinity, |n| {
            let core::NodeAffinity {
                required_during_scheduling_ignored_during_execution: required,
                preferred_during_scheduling_ignored_during_execution: preferred,
            } = n;
            Ok(Obj::new()
                .ptr("requiredDuringSchedulingIgnoredDuringExecution", required, |s| {
                    let core::NodeSelector { node_selector_terms } = s;
                    Ok(Obj::new().list("nodeSelectorTerms", node_selector_terms, node_selector_term)?.done())
                })?
                .list("preferredDuringSchedulingIgnoredDuringExecution", preferred, |p| {
                    let core::PreferredSchedulingTerm { weight, preference } = p;
                    Ok(Obj::new()
                        .opt_int("weight", Some(weight.unwrap_or(0)))
                        .ptr("preference", Some(preference.unwrap_or_default()), node_selector_term)?
                        .done())
                })?
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
    let core::NodeSelectorTerm { match_expressions, match_fields } = t;
    Ok(Obj::new()
        .list("matchExpressions", match_expressions, node_selector_requirement)?
        .list("matchFields", match_fields, node_selector_requirement)?
        .done())
}

fn node_selector_requirement(r: core::NodeSelectorRequirement) -> Conv {
    let core::NodeSelectorRequirement { key, operator, values } = r;
    Ok(Obj::new().str("key", key).str("operator", operator).strs("values", values).done())
}

fn pod_affinity_terms(required: Vec<core::PodAffinityTerm>, preferred: Vec<core::WeightedPodAffinityTerm>) -> Conv {
    Ok(Obj::new()
        .list("requiredDuringSchedulingIgnoredDuringExecution", required, pod_affinity_term)?
        .list("preferredDuringSchedulingIgnoredDuringExecution", preferred, |w| {
            let core::WeightedPodAffinityTerm { weight, pod_affinity_term: term } = w;
            Ok(Obj::new()
                .opt_int("weight", Some(weight.unwrap_or(0)))
                .ptr("podAffinityTerm", Some(term.unwrap_or_default()), pod_affinity_term)?
                .done())
        })?
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
