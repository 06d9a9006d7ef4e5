//! A container's probes as the kubelet runs them: what to check (the
//! action, with named ports resolved) and when (delay, period, timeout,
//! thresholds), with Kubernetes' defaults for every field left out.

use std::net::IpAddr;
use std::time::Duration;

use wasmpod_api::k8s_openapi::api::core::v1::{Container, Probe};
use wasmpod_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The message of every run of an `exec` probe.
pub const EXEC_UNSUPPORTED: &str = "exec probes are not supported by wasm containers";
/// The message of every run of a `grpc` probe.
pub const GRPC_UNSUPPORTED: &str = "gRPC probes are not supported by wasm containers";

/// One probe of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub action: Action,
    /// `initialDelaySeconds`: no run before this long after the start.
    pub initial_delay: Duration,
    /// `periodSeconds`.
    pub period: Duration,
    /// `timeoutSeconds`: a run that takes longer fails.
    pub timeout: Duration,
    /// `successThreshold`: consecutive successes that count as success.
    pub success_threshold: u32,
    /// `failureThreshold`: consecutive failures that count as failure.
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds` of a liveness or startup probe: the
    /// grace period of the stop its failure causes, instead of the pod's.
    pub termination_grace: Option<Duration>,
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `httpGet` over plain HTTP.
    Http(HttpGet),
    /// `tcpSocket`: a connection can be opened.
    Tcp { host: Option<IpAddr>, port: u16 },
    /// A probe that cannot run here: each run fails with this message.
    Unsupported(String),
}

/// An `httpGet` probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGet {
    /// The address to connect to; the pod IP when `None`.
    pub host: Option<IpAddr>,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// `httpHeaders`, in order.
    pub headers: Vec<(String, String)>,
}

/// The probes of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerProbes {
    pub startup: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub readiness: Option<ProbeSpec>,
}

impl ContainerProbes {
    /// The probes `container` declares.
    pub fn of(container: &Container) -> Self {
        let spec = |probe: &Option<Probe>, single_success: bool| {
            probe
                .as_ref()
                .map(|p| ProbeSpec::of(p, container, single_success))
        };
        Self {
            startup: spec(&container.startup_probe, true),
            liveness: spec(&container.liveness_probe, true),
            readiness: spec(&container.readiness_probe, false),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.startup.is_none() && self.liveness.is_none() && self.readiness.is_none()
    }
}

impl ProbeSpec {
    /// `probe` of `container`. Liveness and startup probes count one
    /// success as success, whatever they say (validation requires 1).
    pub fn of(probe: &Probe, container: &Container, single_success: bool) -> Self {
        let seconds = |value: Option<i32>, default: u32, min: u32| -> u32 {
            value
                .map(|v| u32::try_from(v).unwrap_or(0))
                .unwrap_or(default)
                .max(min)
        };
        let success = if single_success {
            1
        } else {
            seconds(probe.success_threshold, 1, 1)
        };
        Self {
            action: action(probe, container),
            initial_delay: Duration::from_secs(seconds(probe.initial_delay_seconds, 0, 0).into()),
            period: Duration::from_secs(seconds(probe.period_seconds, 10, 1).into()),
            timeout: Duration::from_secs(seconds(probe.timeout_seconds, 1, 1).into()),
            success_threshold: success,
            failure_threshold: seconds(probe.failure_threshold, 3, 1),
            termination_grace: probe
                .termination_grace_period_seconds
                .map(|s| Duration::from_secs(s.max(0).unsigned_abs())),
        }
    }
}

fn action(probe: &Probe, container: &Container) -> Action {
    if probe.exec.is_some() {
        return Action::Unsupported(EXEC_UNSUPPORTED.into());
    }
    if probe.grpc.is_some() {
        return Action::Unsupported(GRPC_UNSUPPORTED.into());
    }
    if let Some(get) = &probe.http_get {
        match get.scheme.as_deref() {
            None | Some("HTTP") => {}
            Some("HTTPS") => {
                return Action::Unsupported(
                    "HTTPS probes are not supported: wasm containers are probed over plain HTTP"
                        .into(),
                );
            }
            Some(other) => return Action::Unsupported(format!("unsupported scheme {other:?}")),
        }
        let (host, port) = match (host(get.host.as_deref()), port(&get.port, container)) {
            (Ok(host), Ok(port)) => (host, port),
            (Err(message), _) | (_, Err(message)) => return Action::Unsupported(message),
        };
        let path = get.path.clone().unwrap_or_default();
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        let headers = get
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return Action::Http(HttpGet {
            host,
            port,
            path,
            headers,
        });
    }
    if let Some(tcp) = &probe.tcp_socket {
        return match (host(tcp.host.as_deref()), port(&tcp.port, container)) {
            (Ok(host), Ok(port)) => Action::Tcp { host, port },
            (Err(message), _) | (_, Err(message)) => Action::Unsupported(message),
        };
    }
    Action::Unsupported("the probe has no action".into())
}

/// The probe's `host`: the pod IP when empty; names are not resolved.
fn host(host: Option<&str>) -> Result<Option<IpAddr>, String> {
    match host.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok(None),
        Some(h) => h
            .parse()
            .map(Some)
            .map_err(|_| format!("probe host {h:?} is not an IP address")),
    }
}

/// A port by number, or by the name of one of the container's ports (a
/// numeric string counts as a number, as in the kubelet).
fn port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            let named = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port);
            match named.or_else(|| name.parse().ok()) {
                Some(n) => n,
                None => {
                    return Err(format!(
                        "couldn't find port {name:?} in container {}",
                        container.name
                    ));
                }
            }
        }
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("invalid port number: {number}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn container(value: serde_json::Value) -> Container {
        serde_json::from_value(value).expect("a container")
    }

    #[test]
    fn defaults_are_kubernetes_defaults() {
        let c = container(json!({"name": "app", "readinessProbe": {"tcpSocket": {"port": 80}}}));
        let probes = ContainerProbes::of(&c);
        let spec = probes.readiness.expect("readiness");
        assert_eq!(
            spec.action,
            Action::Tcp {
                host: None,
                port: 80
            }
        );
        assert_eq!(spec.initial_delay, Duration::ZERO);
        assert_eq!(spec.period, Duration::from_secs(10));
        assert_eq!(spec.timeout, Duration::from_secs(1));
        assert_eq!((spec.success_threshold, spec.failure_threshold), (1, 3));
        assert!(probes.liveness.is_none() && probes.startup.is_none());
    }

    #[test]
    fn named_ports_resolve_against_the_containers_ports() {
        let c = container(json!({
            "name": "app",
            "ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"port": "http", "path": "healthz",
                "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
            "readinessProbe": {"httpGet": {"port": "metrics"}},
        }));
        let probes = ContainerProbes::of(&c);
        let Some(Action::Http(get)) = probes.liveness.map(|s| s.action) else {
            panic!("an HTTP probe");
        };
        assert_eq!((get.port, get.path.as_str()), (8080, "/healthz"));
        assert_eq!(get.headers, vec![("X-Probe".to_string(), "1".to_string())]);
        assert_eq!(
            probes.readiness.map(|s| s.action),
            Some(Action::Unsupported(
                "couldn't find port \"metrics\" in container app".into()
            ))
        );
    }

    #[test]
    fn exec_grpc_and_https_fail_with_a_message() {
        let c = container(json!({
            "name": "app",
            "startupProbe": {"exec": {"command": ["true"]}},
            "livenessProbe": {"grpc": {"port": 9000}},
            "readinessProbe": {"httpGet": {"port": 443, "scheme": "HTTPS"}},
        }));
        let probes = ContainerProbes::of(&c);
        let unsupported = |spec: Option<ProbeSpec>| match spec.map(|s| s.action) {
            Some(Action::Unsupported(m)) => m,
            other => panic!("unsupported, not {other:?}"),
        };
        assert_eq!(unsupported(probes.startup), EXEC_UNSUPPORTED);
        assert_eq!(unsupported(probes.liveness), GRPC_UNSUPPORTED);
        assert!(unsupported(probes.readiness).contains("HTTPS"));
    }

    #[test]
    fn liveness_counts_one_success_and_keeps_its_grace_period() {
        let c = container(json!({
            "name": "app",
            "livenessProbe": {"tcpSocket": {"port": 80}, "successThreshold": 3,
                "terminationGracePeriodSeconds": 2, "periodSeconds": 0},
            "readinessProbe": {"tcpSocket": {"port": 80}, "successThreshold": 3},
        }));
        let probes = ContainerProbes::of(&c);
        let liveness = probes.liveness.expect("liveness");
        assert_eq!(liveness.success_threshold, 1);
        assert_eq!(liveness.termination_grace, Some(Duration::from_secs(2)));
        assert_eq!(liveness.period, Duration::from_secs(1));
        assert_eq!(probes.readiness.expect("readiness").success_threshold, 3);
    }
}
