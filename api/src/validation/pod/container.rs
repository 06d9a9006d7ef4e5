//! One container of a pod (regular or init): name, image, ports, env,
//! volume mounts, resources, probes, lifecycle hooks and policies.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, ContainerPort, HTTPGetAction, Probe, VolumeMount};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::env::{validate_env, validate_env_from};
use super::resources::validate_resource_requirements;
use super::volume::validate_local_descending_path;
use crate::error::FieldError;
use crate::validation::field::{
    Path, invalid_each, nonnegative, not_found, one_of, optional_one_of, required_because,
};
use crate::validation::names;

pub const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["FallbackToLogsOnError", "File"];
const URI_SCHEMES: &[&str] = &["HTTP", "HTTPS"];

/// Where a container sits in the pod, which changes what it may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Regular,
    Init,
}

/// Facts about the whole pod a single container's checks need.
pub struct PodFacts<'a> {
    pub volumes: &'a BTreeSet<String>,
    /// Pods must name an image; templates may leave it for tooling to fill in.
    pub require_image: bool,
}

pub fn validate_container(
    c: &Container,
    kind: ContainerKind,
    facts: &PodFacts<'_>,
    p: &Path,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if c.name.is_empty() {
        errors.push(FieldError::required(p.child("name")));
    } else {
        errors.extend(invalid_each(
            &p.child("name"),
            &c.name,
            names::is_dns1123_label(&c.name),
        ));
    }
    let image = c.image.as_deref().unwrap_or_default();
    if facts.require_image {
        if image.is_empty() {
            errors.push(FieldError::required(p.child("image")));
        } else if image.trim() != image {
            errors.push(FieldError::invalid(
                p.child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    errors.extend(validate_container_ports(
        c.ports.as_deref().unwrap_or_default(),
        &p.child("ports"),
    ));
    errors.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &p.child("env"),
    ));
    errors.extend(validate_env_from(
        c.env_from.as_deref().unwrap_or_default(),
        &p.child("envFrom"),
    ));
    errors.extend(validate_volume_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        facts.volumes,
        &p.child("volumeMounts"),
    ));
    if let Some(resources) = &c.resources {
        errors.extend(validate_resource_requirements(
            resources,
            &p.child("resources"),
        ));
    }
    one_of(
        &mut errors,
        &p.child("imagePullPolicy"),
        c.image_pull_policy.as_deref(),
        PULL_POLICIES,
    );
    one_of(
        &mut errors,
        &p.child("terminationMessagePolicy"),
        c.termination_message_policy.as_deref(),
        TERMINATION_MESSAGE_POLICIES,
    );

    // An init container with restartPolicy Always is a sidecar: it runs
    // alongside the regular containers and may have probes and hooks.
    let sidecar = c.restart_policy.as_deref() == Some("Always");
    match kind {
        ContainerKind::Regular => {
            if c.restart_policy.is_some() {
                errors.push(FieldError::forbidden(
                    p.child("restartPolicy"),
                    "may not be set for non-init containers",
                ));
            }
        }
        ContainerKind::Init => optional_one_of(
            &mut errors,
            &p.child("restartPolicy"),
            c.restart_policy.as_deref(),
            &["Always"],
        ),
    }
    let probes = [
        ("livenessProbe", &c.liveness_probe, true),
        ("readinessProbe", &c.readiness_probe, false),
        ("startupProbe", &c.startup_probe, true),
    ];
    for (name, probe, needs_single_success) in probes {
        let Some(probe) = probe else { continue };
        if kind == ContainerKind::Init && !sidecar {
            errors.push(FieldError::forbidden(
                p.child(name),
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        errors.extend(validate_probe(probe, &p.child(name)));
        if needs_single_success && probe.success_threshold.is_some_and(|t| t != 1) {
            errors.push(FieldError::invalid(
                p.child(name).child("successThreshold"),
                probe.success_threshold.unwrap_or(0),
                "must be 1",
            ));
        }
    }
    if let Some(lifecycle) = &c.lifecycle {
        let lp = p.child("lifecycle");
        if kind == ContainerKind::Init && !sidecar {
            errors.push(FieldError::forbidden(
                lp,
                "may not be set for init containers without restartPolicy=Always",
            ));
        } else {
            for (name, handler) in [
                ("postStart", &lifecycle.post_start),
                ("preStop", &lifecycle.pre_stop),
            ] {
                let Some(h) = handler else { continue };
                let hp = lp.child(name);
                let mut count = 0;
                if let Some(exec) = &h.exec {
                    count += 1;
                    if exec.command.as_deref().is_none_or(<[String]>::is_empty) {
                        errors.push(FieldError::required(hp.child("exec").child("command")));
                    }
                }
                if let Some(get) = &h.http_get {
                    count += 1;
                    errors.extend(validate_http_get(get, &hp.child("httpGet")));
                }
                if let Some(tcp) = &h.tcp_socket {
                    count += 1;
                    errors.extend(validate_port_num_or_name(
                        &tcp.port,
                        &hp.child("tcpSocket").child("port"),
                    ));
                }
                if let Some(sleep) = &h.sleep {
                    count += 1;
                    nonnegative(
                        &mut errors,
                        &hp.child("sleep").child("seconds"),
                        Some(sleep.seconds),
                    );
                }
                if count == 0 {
                    errors.push(required_because(&hp, "must specify a handler type"));
                }
            }
        }
    }
    errors
}

fn validate_container_ports(ports: &[ContainerPort], path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut names_seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            errors.extend(invalid_each(
                &p.child("name"),
                name,
                names::is_valid_port_name(name),
            ));
            if !names_seen.insert(name) {
                errors.push(FieldError::duplicate(p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errors.push(FieldError::required(p.child("containerPort")));
        } else {
            errors.extend(invalid_each(
                &p.child("containerPort"),
                &port.container_port.to_string(),
                names::is_valid_port_num(i64::from(port.container_port)),
            ));
        }
        if let Some(host_port) = port.host_port.filter(|h| *h != 0) {
            errors.extend(invalid_each(
                &p.child("hostPort"),
                &host_port.to_string(),
                names::is_valid_port_num(i64::from(host_port)),
            ));
        }
        if let Some(ip) = port.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
            errors.extend(invalid_each(&p.child("hostIP"), ip, names::is_valid_ip(ip)));
        }
        one_of(
            &mut errors,
            &p.child("protocol"),
            port.protocol.as_deref(),
            PROTOCOLS,
        );
    }
    errors
}

/// Host ports must not clash across all containers of the pod.
pub fn accumulate_host_ports(
    containers: &[Container],
    path: &Path,
    seen: &mut BTreeSet<String>,
    errors: &mut Vec<FieldError>,
) {
    for (i, c) in containers.iter().enumerate() {
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let Some(host_port) = port.host_port.filter(|h| *h != 0) else {
                continue;
            };
            let key = format!(
                "{}/{}/{host_port}",
                port.host_ip.as_deref().unwrap_or_default(),
                port.protocol.as_deref().unwrap_or("TCP")
            );
            if !seen.insert(key.clone()) {
                errors.push(FieldError::duplicate(
                    path.index(i).child("ports").index(j).child("hostPort"),
                    key,
                ));
            }
        }
    }
}

fn validate_volume_mounts(
    mounts: &[VolumeMount],
    volumes: &BTreeSet<String>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut mount_points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errors.push(FieldError::required(p.child("name")));
        } else if !volumes.contains(&m.name) {
            errors.push(not_found(p.child("name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errors.push(FieldError::required(p.child("mountPath")));
        } else {
            // wasmpod preopens mounts as WASI directories, which need an
            // absolute guest path.
            if !m.mount_path.starts_with('/') {
                errors.push(FieldError::invalid(
                    p.child("mountPath"),
                    &m.mount_path,
                    "must be an absolute path",
                ));
            }
            if !mount_points.insert(m.mount_path.as_str()) {
                errors.push(FieldError::invalid(
                    p.child("mountPath"),
                    &m.mount_path,
                    "must be unique",
                ));
            }
        }
        let sub_path = m.sub_path.as_deref().unwrap_or_default();
        if !sub_path.is_empty() {
            errors.extend(validate_local_descending_path(
                sub_path,
                &p.child("subPath"),
            ));
        }
        if let Some(expr) = m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            if !sub_path.is_empty() {
                errors.push(FieldError::invalid(
                    p.child("subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errors.extend(validate_local_descending_path(
                expr,
                &p.child("subPathExpr"),
            ));
        }
        optional_one_of(
            &mut errors,
            &p.child("mountPropagation"),
            m.mount_propagation.as_deref(),
            &["Bidirectional", "HostToContainer", "None"],
        );
        optional_one_of(
            &mut errors,
            &p.child("recursiveReadOnly"),
            m.recursive_read_only.as_deref(),
            &["Disabled", "Enabled", "IfPossible"],
        );
    }
    errors
}

/// A port given as a number (1-65535) or an IANA service name.
pub fn validate_port_num_or_name(port: &IntOrString, path: &Path) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => invalid_each(
            path,
            &n.to_string(),
            names::is_valid_port_num(i64::from(*n)),
        ),
        IntOrString::String(s) => invalid_each(path, s, names::is_valid_port_name(s)),
    }
}

fn validate_http_get(get: &HTTPGetAction, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if get.path.as_deref().unwrap_or_default().is_empty() {
        errors.push(FieldError::required(path.child("path")));
    }
    errors.extend(validate_port_num_or_name(&get.port, &path.child("port")));
    optional_one_of(
        &mut errors,
        &path.child("scheme"),
        get.scheme.as_deref(),
        URI_SCHEMES,
    );
    errors
}

fn validate_probe(probe: &Probe, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut count = 0;
    if let Some(exec) = &probe.exec {
        count += 1;
        if exec.command.as_deref().is_none_or(<[String]>::is_empty) {
            errors.push(FieldError::required(path.child("exec").child("command")));
        }
    }
    if let Some(get) = &probe.http_get {
        count += 1;
        errors.extend(validate_http_get(get, &path.child("httpGet")));
    }
    if let Some(tcp) = &probe.tcp_socket {
        count += 1;
        errors.extend(validate_port_num_or_name(
            &tcp.port,
            &path.child("tcpSocket").child("port"),
        ));
    }
    if let Some(grpc) = &probe.grpc {
        count += 1;
        errors.extend(invalid_each(
            &path.child("grpc").child("port"),
            &grpc.port.to_string(),
            names::is_valid_port_num(i64::from(grpc.port)),
        ));
    }
    match count {
        0 => errors.push(required_because(path, "must specify a handler type")),
        1 => {}
        _ => errors.push(FieldError::forbidden(
            path,
            "may not specify more than 1 handler type",
        )),
    }
    for (name, value) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        nonnegative(&mut errors, &path.child(name), value.map(i64::from));
    }
    if let Some(grace) = probe.termination_grace_period_seconds.filter(|g| *g <= 0) {
        errors.push(FieldError::invalid(
            path.child("terminationGracePeriodSeconds"),
            grace,
            "must be greater than 0",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Lifecycle, LifecycleHandler, TCPSocketAction};

    use super::*;

    fn container(name: &str) -> Container {
        Container {
            name: name.into(),
            image: Some("file:///app.wasm".into()),
            image_pull_policy: Some("IfNotPresent".into()),
            termination_message_policy: Some("File".into()),
            ..Default::default()
        }
    }

    fn check(c: &Container, kind: ContainerKind) -> Vec<FieldError> {
        let volumes: BTreeSet<String> = ["data".to_string()].into();
        validate_container(
            c,
            kind,
            &PodFacts {
                volumes: &volumes,
                require_image: true,
            },
            &Path::new("c"),
        )
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn port(n: i32, name: Option<&str>, protocol: &str) -> ContainerPort {
        ContainerPort {
            container_port: n,
            name: name.map(Into::into),
            protocol: Some(protocol.into()),
            ..Default::default()
        }
    }

    #[test]
    fn ports_are_in_range_with_known_protocols_and_unique_names() {
        let mut c = container("app");
        c.ports = Some(vec![
            port(80, Some("http"), "TCP"),
            port(70000, Some("http"), "ICMP"),
            port(81, Some("8080"), "UDP"),
        ]);
        assert_eq!(
            fields(&check(&c, ContainerKind::Regular)),
            [
                "c.ports[1].name",
                "c.ports[1].containerPort",
                "c.ports[1].protocol",
                "c.ports[2].name"
            ]
        );
    }

    #[test]
    fn mounts_must_reference_declared_volumes_at_unique_absolute_paths() {
        let mut c = container("app");
        let mount = |name: &str, path: &str| VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            ..Default::default()
        };
        c.volume_mounts = Some(vec![
            mount("data", "/data"),
            mount("missing", "/x"),
            mount("data", "/data"),
            mount("data", "rel"),
        ]);
        let errs = check(&c, ContainerKind::Regular);
        assert_eq!(
            fields(&errs),
            [
                "c.volumeMounts[1].name",
                "c.volumeMounts[2].mountPath",
                "c.volumeMounts[3].mountPath"
            ]
        );
        assert_eq!(errs[0].reason, "FieldValueNotFound");
    }

    #[test]
    fn image_and_policies_are_required_for_pods() {
        let c = Container {
            name: "app".into(),
            ..Default::default()
        };
        assert_eq!(
            fields(&check(&c, ContainerKind::Regular)),
            ["c.image", "c.imagePullPolicy", "c.terminationMessagePolicy"]
        );
    }

    #[test]
    fn init_containers_may_only_probe_as_sidecars() {
        let mut c = container("init");
        c.readiness_probe = Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(80),
                host: None,
            }),
            ..Default::default()
        });
        c.lifecycle = Some(Lifecycle {
            post_start: Some(LifecycleHandler::default()),
            pre_stop: None,
        });
        assert_eq!(
            fields(&check(&c, ContainerKind::Init)),
            ["c.readinessProbe", "c.lifecycle"]
        );
        c.restart_policy = Some("Always".into());
        assert_eq!(
            fields(&check(&c, ContainerKind::Init)),
            ["c.lifecycle.postStart"]
        );
        assert_eq!(
            fields(&check(&c, ContainerKind::Regular)),
            ["c.restartPolicy", "c.lifecycle.postStart"]
        );
    }

    #[test]
    fn liveness_probe_success_threshold_must_be_one() {
        let mut c = container("app");
        c.liveness_probe = Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("http".into()),
                host: None,
            }),
            success_threshold: Some(2),
            ..Default::default()
        });
        assert_eq!(
            fields(&check(&c, ContainerKind::Regular)),
            ["c.livenessProbe.successThreshold"]
        );
    }
}
