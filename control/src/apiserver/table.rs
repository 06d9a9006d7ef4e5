//! Server-side printing: the `meta.k8s.io/v1 Table` that `kubectl get` asks
//! for (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with the
//! columns kube-apiserver prints for each kind. Every column, wide ones
//! included, is always filled; kubectl hides priority-1 columns unless
//! `-o wide`.

mod cluster;
mod core_v1;
mod format;
mod pod;
mod storage;
mod workloads;

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use wasmpod_api::registry::ResourceType;

/// What each row carries besides its cells (the `includeObject` query
/// parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's metadata as a `PartialObjectMetadata`, what kubectl needs
    /// to name rows and to sort.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; empty means the default.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "None" => Some(IncludeObject::None),
            "Object" => Some(IncludeObject::Object),
            _ => Option::None,
        }
    }
}

/// Whether an `Accept` header asks for a `meta.k8s.io/v1` Table, as
/// `kubectl get` does (it lists the Table first and plain JSON as fallback).
pub fn accepts_table(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        if !parts
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case("application/json"))
        {
            return false;
        }
        let (mut as_table, mut v1, mut meta_group) = (false, false, false);
        for param in parts {
            match param.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("as", "Table")) => as_table = true,
                Some(("v", "v1")) => v1 = true,
                Some(("g", "meta.k8s.io")) => meta_group = true,
                _ => {}
            }
        }
        as_table && v1 && meta_group
    })
}

/// One column definition (`TableColumnDefinition`).
#[derive(Debug, Clone, Copy)]
struct Column {
    name: &'static str,
    /// The OpenAPI type of the cells: `string`, `integer`, `boolean`, `date`.
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    /// 0 for default columns, 1 for those only `-o wide` shows.
    priority: u8,
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

impl Column {
    const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Column {
            name,
            kind,
            format: "",
            description,
            priority: 0,
        }
    }

    /// A column only `kubectl get -o wide` shows.
    const fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Column {
            name,
            kind,
            format: "",
            description,
            priority: 1,
        }
    }

    /// The `Name` column every kind starts with.
    const fn name() -> Self {
        Column {
            name: "Name",
            kind: "string",
            format: "name",
            description: NAME_DESCRIPTION,
            priority: 0,
        }
    }

    /// The `Age` column: time since creation.
    const fn age() -> Self {
        Column::new("Age", "string", CREATION_DESCRIPTION)
    }

    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The columns of kinds without a printer of their own (Role, ClusterRole):
/// kube-apiserver's default table of name and creation time.
const DEFAULT_COLUMNS: &[Column] = &[
    Column::name(),
    Column {
        name: "Created At",
        kind: "date",
        format: "",
        description: CREATION_DESCRIPTION,
        priority: 0,
    },
];

type Cells = fn(&Value, Timestamp) -> Vec<Value>;

/// The columns and cell function of a kind.
fn printer(resource: &ResourceType) -> (&'static [Column], Cells) {
    match (resource.group, resource.kind) {
        ("", "Pod") => (pod::COLUMNS, pod::cells),
        ("", "Node") => (cluster::NODE, cluster::node),
        ("", "Namespace") => (cluster::NAMESPACE, cluster::namespace),
        ("", "Service") => (core_v1::SERVICE, core_v1::service),
        ("", "Endpoints") => (core_v1::ENDPOINTS, core_v1::endpoints),
        ("", "ConfigMap") => (core_v1::CONFIG_MAP, core_v1::config_map),
        ("", "Secret") => (core_v1::SECRET, core_v1::secret),
        ("", "ServiceAccount") => (core_v1::SERVICE_ACCOUNT, core_v1::service_account),
        ("", "PersistentVolume") => (storage::PERSISTENT_VOLUME, storage::persistent_volume),
        ("", "PersistentVolumeClaim") => (
            storage::PERSISTENT_VOLUME_CLAIM,
            storage::persistent_volume_claim,
        ),
        ("", "ReplicationController") => {
            (workloads::REPLICA_SET, workloads::replication_controller)
        }
        ("", "Event") => (core_v1::EVENT, core_v1::event),
        ("apps", "Deployment") => (workloads::DEPLOYMENT, workloads::deployment),
        ("apps", "ReplicaSet") => (workloads::REPLICA_SET, workloads::replica_set),
        ("apps", "StatefulSet") => (workloads::STATEFUL_SET, workloads::stateful_set),
        ("apps", "DaemonSet") => (workloads::DAEMON_SET, workloads::daemon_set),
        ("apps", "ControllerRevision") => (
            workloads::CONTROLLER_REVISION,
            workloads::controller_revision,
        ),
        ("batch", "Job") => (workloads::JOB, workloads::job),
        ("batch", "CronJob") => (workloads::CRON_JOB, workloads::cron_job),
        ("coordination.k8s.io", "Lease") => (cluster::LEASE, cluster::lease),
        ("rbac.authorization.k8s.io", "RoleBinding") => (cluster::ROLE_BINDING, cluster::binding),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            (cluster::CLUSTER_ROLE_BINDING, cluster::binding)
        }
        ("storage.k8s.io", "StorageClass") => (storage::STORAGE_CLASS, storage::storage_class_row),
        _ => (DEFAULT_COLUMNS, default_cells),
    }
}

/// Name and creation time in RFC 3339 (UTC), as kube-apiserver's default
/// table convertor prints them; a missing time prints as Go's zero time.
fn default_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let created = format::timestamp(obj, "/metadata/creationTimestamp")
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![format::text(obj, "/metadata/name").into(), created.into()]
}

/// The Table of `items` (a list, or one object for a get), with the list's
/// `resourceVersion` and `continue` token.
pub fn table(
    resource: &ResourceType,
    items: &[&Value],
    include: IncludeObject,
    resource_version: &str,
    continue_token: Option<&str>,
) -> Value {
    table_at(
        resource,
        items,
        include,
        resource_version,
        continue_token,
        true,
        Timestamp::now(),
    )
}

/// The one-row Table that carries a watch event's object when
/// `kubectl get --watch` asks for tables. Column definitions are only needed
/// in the first event of a stream (`with_columns`): kubectl reuses the
/// previous ones when an event has none, which keeps events small.
pub fn table_for_watch_event(
    resource: &ResourceType,
    item: &Value,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let resource_version = format::text(item, "/metadata/resourceVersion");
    table_at(
        resource,
        &[item],
        include,
        resource_version,
        None,
        with_columns,
        Timestamp::now(),
    )
}

/// [`table`] as of `now`, so ages are deterministic under test.
fn table_at(
    resource: &ResourceType,
    items: &[&Value],
    include: IncludeObject,
    resource_version: &str,
    continue_token: Option<&str>,
    with_columns: bool,
    now: Timestamp,
) -> Value {
    let (columns, cells) = printer(resource);
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells(item, now)));
            if resource.group.is_empty() && resource.kind == "Pod" {
                row.extend(pod::row_conditions(item).map(|c| ("conditions".to_string(), c)));
            }
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    let metadata = item.get("metadata").cloned().unwrap_or_else(|| json!({}));
                    let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata});
                    row.insert("object".into(), partial);
                }
                IncludeObject::Object => {
                    row.insert("object".into(), (*item).clone());
                }
            }
            Value::Object(row)
        })
        .collect();

    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), resource_version.into());
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), token.into());
    }
    let column_definitions: Vec<Value> = if with_columns {
        columns.iter().map(|c| c.to_json()).collect()
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use wasmpod_api::registry::{RESOURCES, by_kind};

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap_or_default()
    }

    fn resource(api_version: &str, kind: &str) -> &'static ResourceType {
        by_kind(api_version, kind).unwrap_or_else(|| panic!("{kind} not served"))
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "42",
                "creationTimestamp": "2024-05-01T11:59:55Z"},
            "spec": {"containers": [{"name": "web"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "web", "ready": true, "restartCount": 0, "state": {"running": {}}}]},
        })
    }

    #[test]
    fn pod_table_has_kubectl_columns_and_partial_metadata() {
        let p = pod();
        let t = table_at(
            resource("v1", "Pod"),
            &[&p],
            IncludeObject::Metadata,
            "100",
            Some("tok"),
            true,
            now(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "100", "continue": "tok"})
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter(|c| c["priority"] == 0)
                    .filter_map(|c| c["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names, ["Name", "Ready", "Status", "Restarts", "Age"]);
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        let row = &t["rows"][0];
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            cells[..5],
            [
                json!("web"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("5s")
            ]
        );
        assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(row["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(row["object"]["metadata"]["name"], "web");
        assert!(row["object"].get("spec").is_none());
    }

    #[test]
    fn include_object_controls_row_object() {
        let p = pod();
        let r = resource("v1", "Pod");
        let none = table_at(r, &[&p], IncludeObject::None, "1", None, true, now());
        assert!(none["rows"][0].get("object").is_none());
        assert!(none["metadata"].get("continue").is_none());
        let full = table_at(r, &[&p], IncludeObject::Object, "1", None, true, now());
        assert_eq!(full["rows"][0]["object"], p);
        assert_eq!(IncludeObject::parse(""), Some(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("All"), None);
    }

    #[test]
    fn every_kind_has_one_cell_per_column() {
        let empty = json!({"metadata": {"name": "x"}});
        for r in RESOURCES {
            let (columns, cells) = printer(r);
            assert_eq!(cells(&empty, now()).len(), columns.len(), "{}", r.kind);
            assert_eq!(
                columns.iter().filter(|c| c.format == "name").count(),
                1,
                "{}",
                r.kind
            );
        }
    }

    #[test]
    fn roles_use_the_default_table() {
        let role =
            json!({"metadata": {"name": "reader", "creationTimestamp": "2024-05-01T10:00:00Z"}});
        let t = table_at(
            resource("rbac.authorization.k8s.io/v1", "Role"),
            &[&role],
            IncludeObject::None,
            "",
            None,
            true,
            now(),
        );
        assert_eq!(t["columnDefinitions"][1]["name"], "Created At");
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["reader", "2024-05-01T10:00:00Z"])
        );
        assert_eq!(t["metadata"], json!({}));
    }

    #[test]
    fn watch_event_table_has_one_row_and_optional_columns() {
        let p = pod();
        let first = table_for_watch_event(resource("v1", "Pod"), &p, IncludeObject::Metadata, true);
        assert_eq!(first["rows"].as_array().map(Vec::len), Some(1));
        assert_eq!(first["metadata"]["resourceVersion"], "42");
        assert!(
            first["columnDefinitions"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        );
        let next = table_for_watch_event(resource("v1", "Pod"), &p, IncludeObject::Metadata, false);
        assert_eq!(next["columnDefinitions"], json!([]));
        assert_eq!(next["rows"][0]["cells"][0], "web");
    }

    #[test]
    fn finished_pods_carry_a_completed_condition() {
        let mut p = pod();
        p["status"] = json!({"phase": "Succeeded"});
        let t = table_at(
            resource("v1", "Pod"),
            &[&p],
            IncludeObject::None,
            "",
            None,
            true,
            now(),
        );
        assert_eq!(t["rows"][0]["conditions"][0]["type"], "Completed");
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
    }

    #[test]
    fn accept_header_negotiation() {
        assert!(accepts_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(accepts_table(
            "application/json; as=Table; g=meta.k8s.io; v=v1"
        ));
        assert!(!accepts_table("application/json"));
        assert!(!accepts_table(
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
        ));
        assert!(!accepts_table(
            "application/yaml;as=Table;v=v1;g=meta.k8s.io"
        ));
    }
}
