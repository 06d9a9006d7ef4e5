//! From a pod spec's container to the runtime's [`ContainerSpec`]: argv from
//! `command`/`args`, the environment from values, ConfigMaps, Secrets and
//! the pod's own fields, `$(VAR)` expansion, and resource limits.

use std::collections::HashMap;
use std::path::PathBuf;

use wasmpod_api::k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret};
use wasmpod_api::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use wasmpod_api::validation::quantity;

use super::api::PodApi;
use crate::agent::container_runtime::{ContainerSpec, Mount, PodRef, PullPolicy, StartError};

/// The pod-wide inputs of a container spec.
#[derive(Debug, Clone)]
pub struct SpecContext<'a> {
    pub pod: &'a Pod,
    pub pod_ref: &'a PodRef,
    /// `status.hostIP`.
    pub host_ip: Option<&'a str>,
    /// Allocatable CPU and memory of the node: what `resourceFieldRef`
    /// reports for a limit the container does not set.
    pub node_cpu_millis: u64,
    pub node_memory_bytes: u64,
}

/// Resolves one container into the spec a runtime starts.
pub async fn build<A: PodApi>(
    api: &A,
    ctx: &SpecContext<'_>,
    container: &Container,
    attempt: u32,
    mounts: Vec<Mount>,
    log_path: PathBuf,
) -> Result<ContainerSpec, StartError> {
    let env = environment(api, ctx, container).await?;
    let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let command = container.command.clone().unwrap_or_default();
    let args = container.args.clone().unwrap_or_default();
    let mut argv: Vec<String> = if command.is_empty() {
        vec![container.name.clone()]
    } else {
        command.iter().map(|c| expand(c, lookup)).collect()
    };
    argv.extend(args.iter().map(|a| expand(a, lookup)));
    let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
    let limit = |name: &str| limits.and_then(|l| l.get(name)).map(parse).transpose();
    let memory_limit_bytes = limit("memory")?.map(|q| clamp_u64(q.units_ceil()));
    let cpu_limit_millis = limit("cpu")?.map(|q| clamp_u64(q.millis_ceil()));
    let image = container.image.clone().unwrap_or_default();
    if image.trim().is_empty() {
        return Err(StartError::InvalidImageName(
            "the container has no image".into(),
        ));
    }
    Ok(ContainerSpec {
        pod: ctx.pod_ref.clone(),
        name: container.name.clone(),
        attempt,
        image,
        image_pull_policy: PullPolicy::from_spec(container.image_pull_policy.as_deref()),
        argv,
        env,
        mounts,
        working_dir: container.working_dir.clone().filter(|w| !w.is_empty()),
        memory_limit_bytes,
        cpu_limit_millis,
        log_path,
        ports: tcp_ports(container),
        // Attached by the pod worker, which owns the pod's network.
        network: None,
    })
}

/// The container's TCP `containerPort`s (UDP and SCTP ones serve no HTTP);
/// the API server has validated them to be 1..=65535.
fn tcp_ports(container: &Container) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    for port in container.ports.iter().flatten() {
        let tcp = port.protocol.as_deref().is_none_or(|p| p == "TCP");
        if let Ok(number) = u16::try_from(port.container_port)
            && tcp
            && number != 0
            && !ports.contains(&number)
        {
            ports.push(number);
        }
    }
    ports
}

fn parse(q: &Quantity) -> Result<quantity::ParsedQuantity, StartError> {
    quantity::parse(&q.0)
        .map_err(|e| StartError::CreateContainerConfig(format!("invalid quantity {:?}: {e}", q.0)))
}

fn clamp_u64(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

/// ConfigMaps and Secrets fetched while resolving one container.
#[derive(Default)]
struct Sources {
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl Sources {
    async fn config_map<A: PodApi>(
        &mut self,
        api: &A,
        ns: &str,
        name: &str,
    ) -> Result<Option<&ConfigMap>, StartError> {
        if !self.config_maps.contains_key(name) {
            let found = match api.config_map(ns, name).await {
                Ok(cm) => Some(cm),
                Err(e) if e.is_not_found() => None,
                Err(e) => {
                    return Err(StartError::CreateContainerConfig(format!(
                        "reading configmap {name:?}: {e}"
                    )));
                }
            };
            self.config_maps.insert(name.into(), found);
        }
        Ok(self.config_maps.get(name).and_then(Option::as_ref))
    }

    async fn secret<A: PodApi>(
        &mut self,
        api: &A,
        ns: &str,
        name: &str,
    ) -> Result<Option<&Secret>, StartError> {
        if !self.secrets.contains_key(name) {
            let found = match api.secret(ns, name).await {
                Ok(s) => Some(s),
                Err(e) if e.is_not_found() => None,
                Err(e) => {
                    return Err(StartError::CreateContainerConfig(format!(
                        "reading secret {name:?}: {e}"
                    )));
                }
            };
            self.secrets.insert(name.into(), found);
        }
        Ok(self.secrets.get(name).and_then(Option::as_ref))
    }
}

/// The values of a ConfigMap, text and binary alike.
pub fn config_map_entries(cm: &ConfigMap) -> Vec<(String, Vec<u8>)> {
    let text = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()));
    let binary = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()));
    text.chain(binary).collect()
}

/// The values of a Secret (`stringData` overriding `data`, as the API does).
pub fn secret_entries(secret: &Secret) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, Vec<u8>)> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        entries.retain(|(key, _)| key != k);
        entries.push((k.clone(), v.clone().into_bytes()));
    }
    entries
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The container's environment: `envFrom` sources first, then `env`, a
/// later definition of a name replacing an earlier one in place.
async fn environment<A: PodApi>(
    api: &A,
    ctx: &SpecContext<'_>,
    container: &Container,
) -> Result<Vec<(String, String)>, StartError> {
    let ns = ctx.pod_ref.namespace.as_str();
    let mut sources = Sources::default();
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, key: String, value: String| match env
        .iter_mut()
        .find(|(k, _)| *k == key)
    {
        Some(slot) => slot.1 = value,
        None => env.push((key, value)),
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let entries = if let Some(r) = &from.config_map_ref {
            match sources.config_map(api, ns, &r.name).await? {
                Some(cm) => config_map_entries(cm),
                None if r.optional == Some(true) => Vec::new(),
                None => return Err(missing("configmap", &r.name)),
            }
        } else if let Some(r) = &from.secret_ref {
            match sources.secret(api, ns, &r.name).await? {
                Some(s) => secret_entries(s),
                None if r.optional == Some(true) => Vec::new(),
                None => return Err(missing("secret", &r.name)),
            }
        } else {
            Vec::new()
        };
        for (k, v) in entries {
            set(&mut env, format!("{prefix}{k}"), lossy(&v));
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value) = env_value(api, ctx, container, var, &env, &mut sources).await? {
            set(&mut env, var.name.clone(), value);
        }
    }
    Ok(env)
}

/// One `env` entry's value; `None` for an optional reference that is absent.
async fn env_value<A: PodApi>(
    api: &A,
    ctx: &SpecContext<'_>,
    container: &Container,
    var: &EnvVar,
    defined: &[(String, String)],
    sources: &mut Sources,
) -> Result<Option<String>, StartError> {
    let ns = ctx.pod_ref.namespace.as_str();
    let Some(from) = &var.value_from else {
        let lookup = |name: &str| {
            defined
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        return Ok(Some(expand(
            var.value.as_deref().unwrap_or_default(),
            lookup,
        )));
    };
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional == Some(true);
        let value = match sources.config_map(api, ns, &r.name).await? {
            Some(cm) => config_map_entries(cm)
                .into_iter()
                .find(|(k, _)| *k == r.key)
                .map(|(_, v)| lossy(&v)),
            None if optional => return Ok(None),
            None => return Err(missing("configmap", &r.name)),
        };
        return match value {
            Some(v) => Ok(Some(v)),
            None if optional => Ok(None),
            None => Err(StartError::CreateContainerConfig(format!(
                "couldn't find key {} in ConfigMap {ns}/{}",
                r.key, r.name
            ))),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let optional = r.optional == Some(true);
        let value = match sources.secret(api, ns, &r.name).await? {
            Some(s) => secret_entries(s)
                .into_iter()
                .find(|(k, _)| *k == r.key)
                .map(|(_, v)| lossy(&v)),
            None if optional => return Ok(None),
            None => return Err(missing("secret", &r.name)),
        };
        return match value {
            Some(v) => Ok(Some(v)),
            None if optional => Ok(None),
            None => Err(StartError::CreateContainerConfig(format!(
                "couldn't find key {} in Secret {ns}/{}",
                r.key, r.name
            ))),
        };
    }
    if let Some(r) = &from.field_ref {
        return field_value(ctx, &r.field_path).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        return resource_value(ctx, container, &r.resource, r.divisor.as_ref()).map(Some);
    }
    Ok(Some(String::new()))
}

fn missing(kind: &str, name: &str) -> StartError {
    StartError::CreateContainerConfig(format!("{kind} {name:?} not found"))
}

/// A `fieldRef` of the downward API.
pub(super) fn field_value(ctx: &SpecContext<'_>, path: &str) -> Result<String, StartError> {
    let pod = ctx.pod;
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let keyed = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    if let Some(key) = keyed("metadata.labels['") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(key) = keyed("metadata.annotations['") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(&key))
            .cloned()
            .unwrap_or_default());
    }
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.hostIP" | "status.hostIPs" => ctx.host_ip.map(str::to_string),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.podIPs" => status.and_then(|s| {
            s.pod_ips.as_ref().map(|ips| {
                ips.iter()
                    .map(|ip| ip.ip.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            })
        }),
        other => {
            return Err(StartError::CreateContainerConfig(format!(
                "unsupported fieldRef {other:?}"
            )));
        }
    };
    Ok(value.unwrap_or_default())
}

/// A `resourceFieldRef`: the container's request or limit over the
/// divisor, rounded up; an unset limit is the node's allocatable amount.
pub(super) fn resource_value(
    ctx: &SpecContext<'_>,
    container: &Container,
    resource: &str,
    divisor: Option<&Quantity>,
) -> Result<String, StartError> {
    let (section, name) = resource.split_once('.').ok_or_else(|| {
        StartError::CreateContainerConfig(format!("unsupported resourceFieldRef {resource:?}"))
    })?;
    let reqs = container.resources.as_ref();
    let map = match section {
        "limits" => reqs.and_then(|r| r.limits.as_ref()),
        "requests" => reqs.and_then(|r| r.requests.as_ref()),
        _ => None,
    };
    let nanos: i128 = match map.and_then(|m| m.get(name)) {
        Some(q) => parse(q)?.nanos(),
        None => match name {
            "cpu" => i128::from(ctx.node_cpu_millis) * 1_000_000,
            "memory" => i128::from(ctx.node_memory_bytes) * 1_000_000_000,
            _ => 0,
        },
    };
    let divisor = match divisor {
        Some(d) => parse(d)?.nanos(),
        None => 1_000_000_000,
    };
    if divisor <= 0 {
        return Err(StartError::CreateContainerConfig(format!(
            "resourceFieldRef {resource:?}: the divisor must be positive"
        )));
    }
    let value = nanos / divisor + i128::from(nanos % divisor != 0 && nanos > 0);
    Ok(value.to_string())
}

/// Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` stands
/// for a literal `$`, and anything else is left as written.
pub fn expand<'v>(input: &str, lookup: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match lookup(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
            continue;
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    out
}
