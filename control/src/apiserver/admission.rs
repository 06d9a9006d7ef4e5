//! What the API server itself decides about objects, beyond a kind's
//! defaulting and validation: system metadata on create, namespace
//! lifecycle, Service ClusterIP and NodePort allocation, the default
//! StorageClass of new claims, the default tolerations of new pods
//! (`default_tolerations`), and how a delete proceeds (at once, or
//! gracefully behind finalizers).
//!
//! Allocations are stored as internal objects (`_clusterips/<ip>`,
//! `_nodeports/<port>`) created in the same commit as the Service, so two
//! API servers on one Postgres can never hand out the same address.

use rand::Rng;
use serde_json::{Value, json};
use wasmpod_api::meta;
use wasmpod_api::registry::ResourceType;
use wasmpod_api::{ApiError, FieldError};

use super::ApiState;
use crate::store::{Key, Op};

pub const CLUSTER_IPS: &str = "_clusterips";
pub const NODE_PORTS: &str = "_nodeports";
/// The Service network, 10.43.0.0/16. 10.43.0.1 is the `kubernetes` Service.
const SERVICE_NET: [u8; 2] = [10, 43];
pub const KUBERNETES_SERVICE_IP: &str = "10.43.0.1";
const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

pub fn now() -> String {
    let ts = jiff::Timestamp::now();
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", ts).unwrap_or_default()
}

fn timestamp_in(seconds: i64) -> String {
    let ts = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", ts).unwrap_or_default()
}

/// Sets the system metadata of a new object and checks its namespace.
pub async fn prepare_create(
    state: &ApiState,
    resource: &ResourceType,
    ns: &str,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let meta_map = meta::metadata_mut(obj);
    if resource.namespaced {
        match meta_map.get("namespace").and_then(Value::as_str) {
            Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            _ => {
                meta_map.insert("namespace".into(), json!(ns));
            }
        }
    } else {
        meta_map.remove("namespace");
    }
    let has_name = meta_map
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_name {
        match meta_map.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => {
                let name = format!("{prefix}{}", random_suffix());
                meta_map.insert("name".into(), json!(name));
            }
            _ => {
                return Err(ApiError::invalid(
                    resource.group,
                    resource.kind,
                    "",
                    vec![
                        FieldError::required("metadata.name")
                            .with_message("name or generateName is required"),
                    ],
                ));
            }
        }
    }
    meta_map.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta_map.insert("creationTimestamp".into(), json!(now()));
    if resource.has_spec() {
        meta_map.insert("generation".into(), json!(1));
    } else {
        meta_map.remove("generation");
    }
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ] {
        meta_map.remove(field);
    }
    if resource.has(wasmpod_api::Subresource::Status)
        && resource.kind != "Node"
        && let Value::Object(m) = obj
    {
        m.remove("status");
    }
    if resource.kind == "Pod" && resource.group.is_empty() {
        super::default_tolerations::add(obj, state.default_toleration_seconds());
    }
    if resource.namespaced {
        check_namespace_open(state, ns).await?;
    }
    if resource.group.is_empty() && resource.kind == "PersistentVolumeClaim" {
        default_storage_class(state, obj).await?;
    }
    Ok(())
}

/// The DefaultStorageClass admission plugin: a claim that does not name a
/// class (`storageClassName` unset, not `""`) gets the default one, the
/// newest if several are marked default.
async fn default_storage_class(state: &ApiState, obj: &mut Value) -> Result<(), ApiError> {
    const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if spec.get("storageClassName").is_some_and(|v| !v.is_null()) {
        return Ok(());
    }
    let classes = state
        .store
        .list("storageclasses.storage.k8s.io", None, None, None)
        .await
        .map_err(|e| super::response::store_error("storage.k8s.io", "storageclasses", e))?;
    let default = classes
        .items
        .iter()
        .filter(|c| c.object["metadata"]["annotations"][DEFAULT_CLASS] == "true")
        .max_by_key(|c| {
            let created = c.object["metadata"]["creationTimestamp"].as_str();
            (created.unwrap_or_default().to_string(), c.revision)
        })
        .and_then(|c| meta::name(&c.object).map(str::to_string));
    if let Some(name) = default {
        spec.insert("storageClassName".into(), json!(name));
    }
    Ok(())
}

/// Creating in a missing namespace is 404; in a terminating one, 403.
async fn check_namespace_open(state: &ApiState, ns: &str) -> Result<(), ApiError> {
    let key = Key::new("namespaces", "", ns);
    let stored = state
        .store
        .get(&key)
        .await
        .map_err(|e| super::response::store_error("", "namespaces", e))?;
    match stored {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(s) if meta::is_deleting(&s.object) => Err(ApiError::Forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        ))),
        Some(_) => Ok(()),
    }
}

fn random_suffix() -> String {
    // kube's alphabet: no vowels (no words) and no look-alike characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Allocates what a new object needs (a Service's ClusterIP and
/// NodePorts), writing it into the object; returns the ops that record the
/// allocations.
pub async fn allocate(
    _state: &ApiState,
    resource: &ResourceType,
    obj: &mut Value,
) -> Result<Vec<Op>, ApiError> {
    if resource.kind != "Service" {
        return Ok(Vec::new());
    }
    let owner = owner_ref(obj);
    let mut ops = Vec::new();
    let svc_type = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if svc_type == "ExternalName" {
        return Ok(ops);
    }
    let requested = obj
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if requested != "None" {
        let ip = if requested.is_empty() {
            let mut rng = rand::rng();
            let n: u16 = rng.random_range(2..=65534);
            format!(
                "{}.{}.{}.{}",
                SERVICE_NET[0],
                SERVICE_NET[1],
                n >> 8,
                n & 0xff
            )
        } else {
            if !in_service_net(&requested) {
                return Err(ApiError::invalid(
                    "",
                    "Service",
                    meta::name(obj).unwrap_or_default(),
                    vec![FieldError::invalid(
                        "spec.clusterIPs[0]",
                        &requested,
                        "provided IP is not in the valid range. The range of valid IPs is 10.43.0.0/16",
                    )],
                ));
            }
            requested
        };
        ops.push(Op::Create {
            key: Key::new(CLUSTER_IPS, "", &ip),
            object: json!({ "service": owner }),
        });
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("clusterIP".into(), json!(ip));
            spec.insert("clusterIPs".into(), json!([ip]));
        }
    }
    if matches!(svc_type.as_str(), "NodePort" | "LoadBalancer") {
        ops.extend(allocate_node_ports(obj, &owner, &[]));
    }
    Ok(ops)
}

fn owner_ref(obj: &Value) -> String {
    format!(
        "{}/{}",
        meta::namespace(obj).unwrap_or_default(),
        meta::name(obj).unwrap_or_default()
    )
}

fn in_service_net(ip: &str) -> bool {
    match ip.parse::<std::net::Ipv4Addr>() {
        Ok(addr) => {
            let o = addr.octets();
            o[0] == SERVICE_NET[0]
                && o[1] == SERVICE_NET[1]
                && !(o[2] == 0 && o[3] == 0)
                && !(o[2] == 255 && o[3] == 255)
        }
        Err(_) => false,
    }
}

/// Gives every port without a nodePort one (reusing `previous` ports of the
/// same port number first) and returns the ops for ports newly taken.
fn allocate_node_ports(obj: &mut Value, owner: &str, previous: &[(i64, i64)]) -> Vec<Op> {
    let mut ops = Vec::new();
    let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return ops;
    };
    let mut rng = rand::rng();
    for port in ports.iter_mut() {
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        let node_port = match port
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|p| *p != 0)
        {
            Some(p) => p,
            None => {
                let reused = previous
                    .iter()
                    .find(|(num, _)| *num == number)
                    .map(|(_, np)| *np);
                let p = reused.unwrap_or_else(|| i64::from(rng.random_range(NODE_PORT_RANGE)));
                port["nodePort"] = json!(p);
                p
            }
        };
        if !previous.iter().any(|(_, np)| *np == node_port) {
            ops.push(Op::Create {
                key: Key::new(NODE_PORTS, "", node_port.to_string()),
                object: json!({ "service": owner }),
            });
        }
    }
    ops
}

fn node_ports(obj: &Value) -> Vec<(i64, i64)> {
    obj.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| Some((p.get("port")?.as_i64()?, p.get("nodePort")?.as_i64()?)))
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_allocation(key: &Key) -> bool {
    key.resource == CLUSTER_IPS || key.resource == NODE_PORTS
}

/// The 422 for an explicitly requested address or port that is taken.
pub fn allocation_taken(resource: &ResourceType, obj: &Value, key: &Key) -> ApiError {
    let (field, what) = if key.resource == CLUSTER_IPS {
        ("spec.clusterIPs[0]", "provided IP is already allocated")
    } else {
        (
            "spec.ports[].nodePort",
            "provided port is already allocated",
        )
    };
    ApiError::invalid(
        resource.group,
        resource.kind,
        meta::name(obj).unwrap_or_default(),
        vec![FieldError::invalid(field, &key.name, what)],
    )
}

/// Ops an update needs besides writing the object: a Service keeps its
/// ClusterIP when the new body leaves it empty, and takes or releases
/// NodePorts as its ports change.
pub async fn update_ops(
    state: &ApiState,
    resource: &ResourceType,
    old: &Value,
    new: &mut Value,
) -> Result<Vec<Op>, ApiError> {
    if resource.kind != "Service" {
        return Ok(Vec::new());
    }
    let old_ip = old.pointer("/spec/clusterIP").cloned();
    if let (Some(ip), Some(spec)) = (old_ip, new.get_mut("spec").and_then(Value::as_object_mut))
        && spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        spec.insert("clusterIP".into(), ip);
        if let Some(ips) = old.pointer("/spec/clusterIPs") {
            spec.insert("clusterIPs".into(), ips.clone());
        }
    }
    let new_type = new
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let previous = node_ports(old);
    let mut ops = Vec::new();
    if matches!(new_type.as_str(), "NodePort" | "LoadBalancer") {
        ops.extend(allocate_node_ports(new, &owner_ref(old), &previous));
    }
    let kept = node_ports(new);
    for (_, np) in previous {
        if !kept.iter().any(|(_, k)| *k == np) {
            let key = Key::new(NODE_PORTS, "", np.to_string());
            if matches!(state.store.get(&key).await, Ok(Some(_))) {
                ops.push(Op::Delete {
                    key,
                    expected_revision: None,
                });
            }
        }
    }
    Ok(ops)
}

/// Ops releasing what an object being removed holds.
pub async fn release_ops(state: &ApiState, resource: &ResourceType, obj: &Value) -> Vec<Op> {
    if resource.kind != "Service" {
        return Vec::new();
    }
    let mut keys = Vec::new();
    if let Some(ip) = obj
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| in_service_net(ip))
    {
        keys.push(Key::new(CLUSTER_IPS, "", ip));
    }
    keys.extend(
        node_ports(obj)
            .into_iter()
            .map(|(_, np)| Key::new(NODE_PORTS, "", np.to_string())),
    );
    let mut ops = Vec::new();
    for key in keys {
        if matches!(state.store.get(&key).await, Ok(Some(_))) {
            ops.push(Op::Delete {
                key,
                expected_revision: None,
            });
        }
    }
    ops
}

/// A Namespace is only removed once its `spec.finalizers` are empty too.
pub fn awaits_finalize(resource: &ResourceType, obj: &Value) -> bool {
    resource.kind == "Namespace"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

/// How a delete proceeds. None: remove the object now. Some(obj): store
/// `obj`, marked for deletion, and wait (for finalizers, for the node to
/// stop a running pod, for the namespace to empty).
pub fn deletion_plan(
    resource: &ResourceType,
    current: &Value,
    grace: Option<i64>,
    policy: Option<&str>,
) -> Option<Value> {
    let mut marked = current.clone();
    let pod_grace = pod_grace_period(resource, current, grace);
    if meta::is_deleting(current) {
        // A second delete may shorten a pod's grace period, or force it.
        return match pod_grace {
            Some(0) => None,
            Some(g)
                if g < current
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX) =>
            {
                let m = meta::metadata_mut(&mut marked);
                m.insert("deletionGracePeriodSeconds".into(), json!(g));
                m.insert("deletionTimestamp".into(), json!(timestamp_in(g)));
                Some(marked)
            }
            _ if meta::finalizers(current).is_empty()
                && !awaits_finalize(resource, current)
                && pod_grace.is_none() =>
            {
                None
            }
            _ => Some(marked),
        };
    }
    let mut finalizers = meta::finalizers(current);
    let policy_finalizer = match policy {
        Some("Orphan") => Some("orphan"),
        Some("Foreground") => Some("foregroundDeletion"),
        _ => None,
    };
    if let Some(f) = policy_finalizer
        && !finalizers.iter().any(|x| x == f)
    {
        finalizers.push(f.to_string());
    }
    let graceful_pod = pod_grace.is_some_and(|g| g > 0);
    if finalizers.is_empty() && !graceful_pod && !awaits_finalize(resource, current) {
        return None;
    }
    let seconds = if graceful_pod {
        pod_grace.unwrap_or(0)
    } else {
        0
    };
    let m = meta::metadata_mut(&mut marked);
    m.insert("deletionTimestamp".into(), json!(timestamp_in(seconds)));
    m.insert("deletionGracePeriodSeconds".into(), json!(seconds));
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), json!(finalizers));
    }
    if resource.kind == "Namespace" {
        marked["status"] = json!({ "phase": "Terminating" });
    }
    Some(marked)
}

/// The grace period of a pod that a node must stop first, if it is one.
fn pod_grace_period(resource: &ResourceType, pod: &Value, requested: Option<i64>) -> Option<i64> {
    if resource.kind != "Pod" {
        return None;
    }
    let on_node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !on_node || finished {
        return None;
    }
    let default = pod
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    Some(requested.unwrap_or(default).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmpod_api::registry::by_kind;

    fn pods() -> &'static ResourceType {
        by_kind("v1", "Pod").expect("pods")
    }

    #[test]
    fn unbound_pods_are_deleted_at_once() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(deletion_plan(pods(), &pod, None, None).is_none());
    }

    #[test]
    fn running_pods_get_their_grace_period() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10}});
        let marked = deletion_plan(pods(), &pod, None, None).expect("graceful");
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 10);
        let forced = deletion_plan(pods(), &marked, Some(0), None);
        assert!(
            forced.is_none(),
            "grace period 0 on a terminating pod removes it"
        );
    }

    #[test]
    fn finalizers_and_policies_defer_deletion() {
        let cm = by_kind("v1", "ConfigMap").expect("configmaps");
        let obj = json!({"metadata": {"name": "c", "finalizers": ["example.com/keep"]}});
        assert!(deletion_plan(cm, &obj, None, None).is_some());
        let plain = json!({"metadata": {"name": "c"}});
        let orphaned = deletion_plan(cm, &plain, None, Some("Orphan")).expect("orphan finalizer");
        assert_eq!(orphaned["metadata"]["finalizers"], json!(["orphan"]));
    }

    #[test]
    fn service_ips_stay_in_the_service_network() {
        assert!(in_service_net("10.43.7.9"));
        assert!(!in_service_net("10.42.0.5"));
        assert!(!in_service_net("10.43.0.0"));
        assert!(!in_service_net("not an ip"));
    }
}
