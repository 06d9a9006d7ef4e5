//! Rows of the kinds that describe the cluster itself rather than a
//! workload: Node, Namespace, Lease, and the RBAC bindings.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::Column;
use super::format::{list, since, text, text_or};

pub(super) const NODE: &[Column] = &[
    Column::name(),
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    Column::age(),
    Column::new("Version", "string", "Kubelet Version reported by the node."),
    Column::wide(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node.",
    ),
    Column::wide(
        "External-IP",
        "string",
        "List of addresses reachable to the node.",
    ),
    Column::wide(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    Column::wide(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    Column::wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

pub(super) const NAMESPACE: &[Column] = &[
    Column::name(),
    Column::new("Status", "string", "The status of the namespace"),
    Column::age(),
];

pub(super) const LEASE: &[Column] = &[
    Column::name(),
    Column::new(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    Column::age(),
];

pub(super) const ROLE_BINDING: &[Column] = &[
    Column::name(),
    Column::new(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
    ),
    Column::age(),
    Column::wide("Users", "string", "Users in the roleBinding"),
    Column::wide("Groups", "string", "Groups in the roleBinding"),
    Column::wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

pub(super) const CLUSTER_ROLE_BINDING: &[Column] = &[
    Column::name(),
    Column::new(
        "Role",
        "string",
        "RoleRef can only reference a ClusterRole in the global namespace.",
    ),
    Column::age(),
    Column::wide("Users", "string", "Users in the clusterRoleBinding"),
    Column::wide("Groups", "string", "Groups in the clusterRoleBinding"),
    Column::wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

/// `Ready`, `NotReady` or `Unknown`, then `SchedulingDisabled` when cordoned.
fn node_status(node: &Value) -> String {
    let mut status: Vec<&str> = Vec::new();
    match list(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| text(c, "/type") == "Ready")
    {
        Some(c) if text(c, "/status") == "True" => status.push("Ready"),
        Some(_) => status.push("NotReady"),
        None => status.push("Unknown"),
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    status.join(",")
}

/// Roles from `node-role.kubernetes.io/<role>` labels and the
/// `kubernetes.io/role` label, sorted, or `<none>`.
fn node_roles(node: &Value) -> String {
    let mut roles: BTreeSet<&str> = BTreeSet::new();
    if let Some(Value::Object(labels)) = node.pointer("/metadata/labels") {
        for (key, value) in labels {
            if let Some(role) = key
                .strip_prefix(ROLE_LABEL_PREFIX)
                .filter(|r| !r.is_empty())
            {
                roles.insert(role);
            } else if key == ROLE_LABEL {
                roles.extend(value.as_str().filter(|v| !v.is_empty()));
            }
        }
    }
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

/// The first address of type `kind`, or `<none>`.
fn node_address<'a>(node: &'a Value, kind: &str) -> &'a str {
    list(node, "/status/addresses")
        .iter()
        .find(|a| text(a, "/type") == kind)
        .map_or("<none>", |a| text(a, "/address"))
}

pub(super) fn node(node: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        text(node, "/metadata/name").into(),
        node_status(node).into(),
        node_roles(node).into(),
        since(node, "/metadata/creationTimestamp", now).into(),
        text(node, "/status/nodeInfo/kubeletVersion").into(),
        node_address(node, "InternalIP").into(),
        node_address(node, "ExternalIP").into(),
        text_or(node, "/status/nodeInfo/osImage", "<unknown>").into(),
        text_or(node, "/status/nodeInfo/kernelVersion", "<unknown>").into(),
        text_or(
            node,
            "/status/nodeInfo/containerRuntimeVersion",
            "<unknown>",
        )
        .into(),
    ]
}

pub(super) fn namespace(ns: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        text(ns, "/metadata/name").into(),
        text(ns, "/status/phase").into(),
        since(ns, "/metadata/creationTimestamp", now).into(),
    ]
}

pub(super) fn lease(lease: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        text(lease, "/metadata/name").into(),
        text(lease, "/spec/holderIdentity").into(),
        since(lease, "/metadata/creationTimestamp", now).into(),
    ]
}

/// The cells of a RoleBinding or ClusterRoleBinding: the role as `Kind/name`
/// and the subjects split into users, groups and `namespace/name` service
/// accounts.
pub(super) fn binding(b: &Value, now: Timestamp) -> Vec<Value> {
    let mut users: Vec<&str> = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    let mut service_accounts: Vec<String> = Vec::new();
    for subject in list(b, "/subjects") {
        match text(subject, "/kind") {
            "User" => users.push(text(subject, "/name")),
            "Group" => groups.push(text(subject, "/name")),
            "ServiceAccount" => {
                service_accounts.push(format!(
                    "{}/{}",
                    text(subject, "/namespace"),
                    text(subject, "/name")
                ));
            }
            _ => {}
        }
    }
    vec![
        text(b, "/metadata/name").into(),
        format!("{}/{}", text(b, "/roleRef/kind"), text(b, "/roleRef/name")).into(),
        since(b, "/metadata/creationTimestamp", now).into(),
        users.join(", ").into(),
        groups.join(", ").into(),
        service_accounts.join(", ").into(),
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
    fn node_row_reports_readiness_roles_and_addresses() {
        let n = json!({
            "metadata": {"name": "edge-1", "creationTimestamp": "2024-04-01T12:00:00Z",
                "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge", "zone": "a"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "edge-1"}, {"type": "InternalIP", "address": "10.1.0.4"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0+wasmpod.0.1.0", "osImage": "Debian"},
            },
        });
        assert_eq!(
            node(&n, now()),
            vec![
                json!("edge-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,edge"),
                json!("30d"),
                json!("v1.32.0+wasmpod.0.1.0"),
                json!("10.1.0.4"),
                json!("<none>"),
                json!("Debian"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
        let fresh = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(node_status(&fresh), "NotReady");
        assert_eq!(node_status(&json!({})), "Unknown");
        assert_eq!(node_roles(&fresh), "<none>");
    }

    #[test]
    fn namespace_and_lease_rows() {
        let ns = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
        assert_eq!(namespace(&ns, now())[1], "Active");
        let l = json!({"metadata": {"name": "edge-1"}, "spec": {"holderIdentity": "edge-1"}});
        assert_eq!(lease(&l, now())[1], "edge-1");
    }

    #[test]
    fn binding_splits_subjects_by_kind() {
        let b = json!({
            "metadata": {"name": "admins"},
            "roleRef": {"kind": "ClusterRole", "name": "admin"},
            "subjects": [
                {"kind": "User", "name": "ana"},
                {"kind": "Group", "name": "ops"},
                {"kind": "ServiceAccount", "namespace": "ci", "name": "runner"},
                {"kind": "User", "name": "bo"},
            ],
        });
        assert_eq!(
            binding(&b, now())[1..],
            [
                json!("ClusterRole/admin"),
                json!("<unknown>"),
                json!("ana, bo"),
                json!("ops"),
                json!("ci/runner")
            ]
        );
    }
}
