//! Pod defaults: those of every pod spec (also applied to workload
//! templates), the Pod-only ones the API server and its admission plugins
//! add (service account, priority, requests from limits), and the status
//! a new Pod starts with (phase and QoS class).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, HTTPGetAction, ObjectFieldSelector, Pod, PodSecurityContext, PodSpec, PodStatus,
    PodTemplateSpec, Probe, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::validation::pod::priority_for_class;
use crate::validation::pod::volume::set_fields;
use crate::validation::quantity::{self, ParsedQuantity};

/// File mode of projected ConfigMap, Secret and downward-API files (0644).
const DEFAULT_FILE_MODE: i32 = 0o644;

/// `SetDefaults_Pod` plus what Pod admission adds, and a fresh status.
pub fn pod(obj: &mut Pod) {
    let spec = obj.spec.get_or_insert_with(Default::default);
    pod_spec(spec);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        requests_from_limits(c);
    }
    spec.enable_service_links.get_or_insert(true);
    if spec.host_network == Some(true) {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            for port in c.ports.iter_mut().flatten() {
                if port.host_port.unwrap_or(0) == 0 {
                    port.host_port = Some(port.container_port);
                }
            }
        }
    }
    // The ServiceAccount admission plugin runs pods as "default" unless told otherwise.
    mirror_service_account(spec);
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        spec.service_account_name = Some("default".into());
        spec.service_account = Some("default".into());
    }
    // The Priority admission plugin resolves the class; an unknown class is
    // left for validation to report.
    if spec.priority.is_none() {
        spec.priority = priority_for_class(spec.priority_class_name.as_deref());
    }
    spec.preemption_policy
        .get_or_insert_with(|| "PreemptLowerPriority".into());

    let qos = qos_class(spec);
    let status = obj.status.get_or_insert_with(PodStatus::default);
    status.phase.get_or_insert_with(|| "Pending".into());
    status.qos_class.get_or_insert_with(|| qos.into());
}

/// Defaults of a workload's pod template: the pod spec defaults only, as
/// Kubernetes applies `SetDefaults_PodSpec` but not `SetDefaults_Pod` to templates.
pub fn pod_template(template: &mut PodTemplateSpec) {
    if let Some(spec) = template.spec.as_mut() {
        pod_spec(spec);
        mirror_service_account(spec);
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything a spec contains.
fn pod_spec(spec: &mut PodSpec) {
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        container(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
}

/// `serviceAccount` is the deprecated spelling of `serviceAccountName`; the
/// API keeps both and the newer one wins.
fn mirror_service_account(spec: &mut PodSpec) {
    let name = spec
        .service_account_name
        .as_deref()
        .filter(|n| !n.is_empty());
    let legacy = spec.service_account.as_deref().filter(|n| !n.is_empty());
    if let Some(n) = name.or(legacy).map(str::to_string) {
        spec.service_account_name = Some(n.clone());
        spec.service_account = Some(n);
    }
}

fn container(c: &mut Container) {
    if c.image_pull_policy
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        c.image_pull_policy =
            Some(image_pull_policy(c.image.as_deref().unwrap_or_default()).into());
    }
    if c.termination_message_path
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        c.termination_message_path = Some("/dev/termination-log".into());
    }
    if c.termination_message_policy
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        c.termination_message_policy = Some("File".into());
    }
    for port in c.ports.iter_mut().flatten() {
        if port.protocol.as_deref().unwrap_or_default().is_empty() {
            port.protocol = Some("TCP".into());
        }
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        probe_defaults(probe);
    }
    if let Some(lifecycle) = c.lifecycle.as_mut() {
        for handler in [&mut lifecycle.post_start, &mut lifecycle.pre_stop]
            .into_iter()
            .flatten()
        {
            if let Some(get) = handler.http_get.as_mut() {
                http_get(get);
            }
        }
    }
    for var in c.env.iter_mut().flatten() {
        if let Some(f) = var.value_from.as_mut().and_then(|s| s.field_ref.as_mut()) {
            field_selector(f);
        }
    }
}

fn probe_defaults(probe: &mut Probe) {
    for (field, default) in [
        (&mut probe.timeout_seconds, 1),
        (&mut probe.period_seconds, 10),
        (&mut probe.success_threshold, 1),
        (&mut probe.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(default);
        }
    }
    if let Some(get) = probe.http_get.as_mut() {
        http_get(get);
    }
}

fn http_get(get: &mut HTTPGetAction) {
    if get.path.as_deref().unwrap_or_default().is_empty() {
        get.path = Some("/".into());
    }
    if get.scheme.as_deref().unwrap_or_default().is_empty() {
        get.scheme = Some("HTTP".into());
    }
}

fn field_selector(f: &mut ObjectFieldSelector) {
    if f.api_version.as_deref().unwrap_or_default().is_empty() {
        f.api_version = Some("v1".into());
    }
}

fn volume(v: &mut Volume) {
    if set_fields(v, &["name"]).is_empty() {
        v.empty_dir = Some(Default::default());
    }
    if let Some(hp) = v.host_path.as_mut() {
        hp.type_.get_or_insert_with(String::new);
    }
    if let Some(cm) = v.config_map.as_mut() {
        cm.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(d) = v.downward_api.as_mut() {
        d.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        for item in d.items.iter_mut().flatten() {
            if let Some(f) = item.field_ref.as_mut() {
                field_selector(f);
            }
        }
    }
    if let Some(p) = v.projected.as_mut() {
        p.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        for source in p.sources.iter_mut().flatten() {
            if let Some(token) = source.service_account_token.as_mut() {
                token.expiration_seconds.get_or_insert(3600);
            }
            for item in source
                .downward_api
                .iter_mut()
                .flat_map(|d| d.items.iter_mut().flatten())
            {
                if let Some(f) = item.field_ref.as_mut() {
                    field_selector(f);
                }
            }
        }
    }
}

/// Kubernetes' pull policy default: `Always` for `:latest` or untagged
/// references, `IfNotPresent` otherwise. wasmpod's module references that
/// cannot change under the same name (local files, URLs, `sha256:` digests)
/// are `IfNotPresent` too.
pub fn image_pull_policy(image: &str) -> &'static str {
    const PINNED_PREFIXES: &[&str] = &["file://", "https://", "http://", "sha256:"];
    if image.is_empty() || PINNED_PREFIXES.iter().any(|p| image.starts_with(p)) {
        return "IfNotPresent";
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A tag follows the last ':' of the last path component; a ':' before
    // a '/' belongs to a registry host's port.
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

/// Copies each limit to the matching request when no request is given.
fn requests_from_limits(c: &mut Container) {
    let Some(resources) = c.resources.as_mut() else {
        return;
    };
    let Some(limits) = resources.limits.as_ref() else {
        return;
    };
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    for (name, value) in limits {
        requests
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
}

/// The QoS class Kubernetes assigns (`ComputePodQOS`): Guaranteed when every
/// container limits cpu and memory and requests equal limits, BestEffort
/// when nothing requests or limits cpu or memory, Burstable otherwise.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, ParsedQuantity> = BTreeMap::new();
    let mut limits: BTreeMap<&str, ParsedQuantity> = BTreeMap::new();
    let mut guaranteed = true;
    // Only positive cpu and memory amounts count towards the QoS class.
    fn positive<'a>((name, q): (&'a String, &Quantity)) -> Option<(&'a str, ParsedQuantity)> {
        let parsed = quantity::parse(&q.0).ok().filter(|p| p.nanos() > 0)?;
        matches!(name.as_str(), "cpu" | "memory").then_some((name.as_str(), parsed))
    }
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let res = c.resources.as_ref();
        for (name, q) in res
            .and_then(|r| r.requests.as_ref())
            .into_iter()
            .flatten()
            .filter_map(positive)
        {
            let sum = requests.entry(name).or_default();
            *sum = sum.saturating_add(q);
        }
        let mut found = Vec::new();
        for (name, q) in res
            .and_then(|r| r.limits.as_ref())
            .into_iter()
            .flatten()
            .filter_map(positive)
        {
            found.push(name);
            let sum = limits.entry(name).or_default();
            *sum = sum.saturating_add(q);
        }
        if !(found.contains(&"cpu") && found.contains(&"memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    let requests_match = requests.iter().all(|(name, q)| limits.get(name) == Some(q));
    if guaranteed && requests_match && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, ContainerPort, ResourceRequirements, TCPSocketAction,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;

    fn pod_with(containers: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn app(image: &str) -> Container {
        Container {
            name: "app".into(),
            image: Some(image.into()),
            ..Default::default()
        }
    }

    fn resources(
        limits: &[(&str, &str)],
        requests: &[(&str, &str)],
    ) -> Option<ResourceRequirements> {
        let map = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Some(ResourceRequirements {
            limits: map(limits),
            requests: map(requests),
            claims: None,
        })
    }

    #[test]
    fn pod_spec_defaults_match_kubernetes() {
        let mut p = pod_with(vec![app("app:v1")]);
        pod(&mut p);
        let spec = p.spec.as_ref().expect("spec");
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
        assert_eq!(spec.security_context, Some(PodSecurityContext::default()));
        assert_eq!(spec.enable_service_links, Some(true));
        assert_eq!(spec.service_account_name.as_deref(), Some("default"));
        assert_eq!(spec.service_account.as_deref(), Some("default"));
        assert_eq!(spec.priority, Some(0));
        assert_eq!(
            spec.preemption_policy.as_deref(),
            Some("PreemptLowerPriority")
        );
        let c = &spec.containers[0];
        assert_eq!(
            c.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        let status = p.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("app"), "Always");
        assert_eq!(image_pull_policy("app:latest"), "Always");
        assert_eq!(image_pull_policy("registry:5000/app"), "Always");
        assert_eq!(image_pull_policy("registry:5000/app:v1"), "IfNotPresent");
        assert_eq!(image_pull_policy("app@sha256:abcd"), "IfNotPresent");
        assert_eq!(image_pull_policy("file:///srv/app.wasm"), "IfNotPresent");
        assert_eq!(
            image_pull_policy("https://example.com/app.wasm"),
            "IfNotPresent"
        );
        assert_eq!(image_pull_policy("sha256:0123abcd"), "IfNotPresent");
    }

    #[test]
    fn explicit_values_are_kept() {
        let mut c = app("app");
        c.image_pull_policy = Some("Never".into());
        let mut p = pod_with(vec![c]);
        p.spec.as_mut().expect("spec").restart_policy = Some("Never".into());
        p.spec.as_mut().expect("spec").service_account = Some("builder".into());
        pod(&mut p);
        let spec = p.spec.as_ref().expect("spec");
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("Never")
        );
        assert_eq!(spec.service_account_name.as_deref(), Some("builder"));
    }

    #[test]
    fn ports_probes_and_volumes_get_defaults() {
        let mut c = app("app:v1");
        c.ports = Some(vec![ContainerPort {
            container_port: 80,
            ..Default::default()
        }]);
        c.readiness_probe = Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(80),
                host: None,
            }),
            ..Default::default()
        });
        let mut p = pod_with(vec![c]);
        p.spec.as_mut().expect("spec").volumes = Some(vec![
            Volume {
                name: "scratch".into(),
                ..Default::default()
            },
            Volume {
                name: "cfg".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "cfg".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]);
        pod(&mut p);
        let spec = p.spec.as_ref().expect("spec");
        assert_eq!(
            spec.containers[0].ports.as_ref().expect("ports")[0]
                .protocol
                .as_deref(),
            Some("TCP")
        );
        let probe = spec.containers[0].readiness_probe.as_ref().expect("probe");
        assert_eq!(
            (
                probe.timeout_seconds,
                probe.period_seconds,
                probe.success_threshold,
                probe.failure_threshold
            ),
            (Some(1), Some(10), Some(1), Some(3))
        );
        let volumes = spec.volumes.as_ref().expect("volumes");
        assert!(volumes[0].empty_dir.is_some());
        assert_eq!(
            volumes[1].config_map.as_ref().and_then(|c| c.default_mode),
            Some(0o644)
        );
    }

    #[test]
    fn qos_class_is_computed_as_kubernetes_does() {
        let qos = |containers: Vec<Container>| {
            let mut p = pod_with(containers);
            pod(&mut p);
            p.status.and_then(|s| s.qos_class).unwrap_or_default()
        };
        let with = |r| Container {
            resources: r,
            ..app("a")
        };
        assert_eq!(qos(vec![app("a")]), "BestEffort");
        // Requests default to limits, so limits alone on cpu and memory are Guaranteed.
        assert_eq!(
            qos(vec![with(resources(
                &[("cpu", "1"), ("memory", "1Gi")],
                &[]
            ))]),
            "Guaranteed"
        );
        assert_eq!(
            qos(vec![with(resources(
                &[("cpu", "1"), ("memory", "1Gi")],
                &[("cpu", "500m")]
            ))]),
            "Burstable"
        );
        assert_eq!(
            qos(vec![with(resources(&[("cpu", "1")], &[]))]),
            "Burstable"
        );
        assert_eq!(
            qos(vec![with(resources(&[], &[("memory", "1Gi")]))]),
            "Burstable"
        );
        assert_eq!(
            qos(vec![
                with(resources(&[("cpu", "1"), ("memory", "1Gi")], &[])),
                app("b")
            ]),
            "Burstable",
            "a container without limits makes the pod Burstable"
        );
    }

    #[test]
    fn templates_get_spec_defaults_but_not_pod_only_ones() {
        let mut t = PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![app("app")],
                ..Default::default()
            }),
        };
        pod_template(&mut t);
        let spec = t.spec.expect("spec");
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.enable_service_links, None);
        assert_eq!(spec.service_account_name, None);
        assert_eq!(spec.priority, None);
    }
}
