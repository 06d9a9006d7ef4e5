//! JSON schemas of every served kind, in the OpenAPI v3 shape Kubernetes
//! publishes: the components behind `/openapi/v3`, `kubectl explain`, and
//! the patch metadata (`x-kubernetes-patch-strategy` / `-merge-key`) that
//! both kubectl (to compute apply patches) and strategic merge patch (to
//! apply them) read, from the one table below so the two always agree.

use std::sync::LazyLock;

use k8s_openapi::api::{autoscaling, core};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::registry::{RESOURCES, ResourceType};

/// Where components live; every `$ref` starts with this.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// The extension naming a root kind's group, version and kind.
pub const GVK_EXTENSION: &str = "x-kubernetes-group-version-kind";
pub const PATCH_STRATEGY_EXTENSION: &str = "x-kubernetes-patch-strategy";
pub const PATCH_MERGE_KEY_EXTENSION: &str = "x-kubernetes-patch-merge-key";

/// How strategic merge patch treats one property, from the `patchStrategy`
/// and `patchMergeKey` tags of the Kubernetes Go types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchRule {
    /// Component name of the type that owns the property.
    pub type_name: &'static str,
    pub property: &'static str,
    /// `merge`, `retainKeys`, `merge,retainKeys` or `replace`.
    pub strategy: &'static str,
    /// For lists of objects merged by key: the key field.
    pub merge_key: Option<&'static str>,
}

const fn rule(
    type_name: &'static str,
    property: &'static str,
    strategy: &'static str,
    merge_key: Option<&'static str>,
) -> PatchRule {
    PatchRule {
        type_name,
        property,
        strategy,
        merge_key,
    }
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const POD_STATUS: &str = "io.k8s.api.core.v1.PodStatus";
const CONTAINER: &str = "io.k8s.api.core.v1.Container";
const EPHEMERAL_CONTAINER: &str = "io.k8s.api.core.v1.EphemeralContainer";
const CONTAINER_STATUS: &str = "io.k8s.api.core.v1.ContainerStatus";

/// Every property of a served type whose strategic merge differs from
/// "maps merge, lists replace". Lists not named here (tolerations,
/// command, args, rules, ...) are replaced whole.
pub static PATCH_RULES: &[PatchRule] = &[
    rule(OBJECT_META, "finalizers", "merge", None),
    rule(OBJECT_META, "ownerReferences", "merge", Some("uid")),
    rule(POD_SPEC, "volumes", "merge,retainKeys", Some("name")),
    rule(POD_SPEC, "initContainers", "merge", Some("name")),
    rule(POD_SPEC, "containers", "merge", Some("name")),
    rule(POD_SPEC, "ephemeralContainers", "merge", Some("name")),
    rule(POD_SPEC, "imagePullSecrets", "merge", Some("name")),
    rule(POD_SPEC, "hostAliases", "merge", Some("ip")),
    rule(
        POD_SPEC,
        "topologySpreadConstraints",
        "merge",
        Some("topologyKey"),
    ),
    rule(POD_SPEC, "schedulingGates", "merge", Some("name")),
    rule(POD_SPEC, "resourceClaims", "merge,retainKeys", Some("name")),
    rule(CONTAINER, "ports", "merge", Some("containerPort")),
    rule(CONTAINER, "env", "merge", Some("name")),
    rule(CONTAINER, "volumeMounts", "merge", Some("mountPath")),
    rule(CONTAINER, "volumeDevices", "merge", Some("devicePath")),
    rule(EPHEMERAL_CONTAINER, "ports", "merge", Some("containerPort")),
    rule(EPHEMERAL_CONTAINER, "env", "merge", Some("name")),
    rule(
        EPHEMERAL_CONTAINER,
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    rule(
        EPHEMERAL_CONTAINER,
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    rule(POD_STATUS, "conditions", "merge", Some("type")),
    rule(POD_STATUS, "podIPs", "merge", Some("ip")),
    rule(POD_STATUS, "hostIPs", "merge", Some("ip")),
    rule(
        POD_STATUS,
        "resourceClaimStatuses",
        "merge,retainKeys",
        Some("name"),
    ),
    rule(CONTAINER_STATUS, "volumeMounts", "merge", Some("mountPath")),
    rule(
        CONTAINER_STATUS,
        "allocatedResourcesStatus",
        "merge",
        Some("name"),
    ),
    rule(
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "merge",
        Some("port"),
    ),
    rule(
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "merge",
        Some("name"),
    ),
    rule("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", None),
    rule(
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        None,
    ),
    rule(
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    rule(
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
];

/// The rule for `property` of the component `type_name`, if it has one.
pub fn patch_rule(type_name: &str, property: &str) -> Option<&'static PatchRule> {
    PATCH_RULES
        .iter()
        .find(|r| r.type_name == type_name && r.property == property)
}

static COMPONENTS: LazyLock<Map<String, Value>> = LazyLock::new(generate);

/// Every component schema, keyed by name (`io.k8s.api.core.v1.Pod`),
/// generated on first use.
pub fn components() -> &'static Map<String, Value> {
    &COMPONENTS
}

/// One component by name.
pub fn component(name: &str) -> Option<&'static Value> {
    COMPONENTS.get(name)
}

/// The component name of a served kind, e.g. `io.k8s.api.apps.v1.Deployment`.
pub fn root_schema_name(resource: &ResourceType) -> String {
    resource.ops.schema_name()
}

/// The component name of a served kind's list, e.g. `io.k8s.api.core.v1.PodList`.
pub fn list_schema_name(resource: &ResourceType) -> String {
    format!("{}List", root_schema_name(resource))
}

/// `#/components/schemas/<name>`.
pub fn reference(name: &str) -> String {
    format!("{REF_PREFIX}{name}")
}

/// Follows `$ref` and single-member `allOf` wrappers (how a described
/// reference is written in OpenAPI 3.0) to the schema that has the content.
/// A reference that names no component resolves to itself.
pub fn resolve(schema: &Value) -> &Value {
    let mut current = schema;
    // Component chains are short; the bound only guards against cycles.
    for _ in 0..16 {
        if let Some(name) = current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(REF_PREFIX))
        {
            match component(name) {
                Some(target) => current = target,
                None => return current,
            }
        } else if let Some([only]) = current
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            current = only;
        } else {
            return current;
        }
    }
    current
}

/// The patch strategy and merge key a property schema carries.
pub fn patch_meta(property: &Value) -> (Option<&str>, Option<&str>) {
    (
        property
            .get(PATCH_STRATEGY_EXTENSION)
            .and_then(Value::as_str),
        property
            .get(PATCH_MERGE_KEY_EXTENSION)
            .and_then(Value::as_str),
    )
}

fn generate() -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    for resource in RESOURCES {
        resource.ops.schema(&mut generator);
    }
    // Types the API serves besides the kinds: subresources, errors, deletes.
    generator.subschema_for::<autoscaling::v1::Scale>();
    generator.subschema_for::<core::v1::Binding>();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::DeleteOptions>();
    let list_meta = generator.subschema_for::<meta::ListMeta>().to_value();
    let mut components = generator.take_definitions(true);

    for resource in RESOURCES {
        let gvk = gvk(resource.group, resource.version, resource.kind);
        if let Some(Value::Object(root)) = components.get_mut(&root_schema_name(resource)) {
            root.insert(GVK_EXTENSION.into(), gvk);
        }
        components.insert(
            list_schema_name(resource),
            list_schema(resource, &list_meta),
        );
    }
    for (name, group, kind) in [
        ("io.k8s.api.autoscaling.v1.Scale", "autoscaling", "Scale"),
        ("io.k8s.api.core.v1.Binding", "", "Binding"),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.Status", "", "Status"),
    ] {
        if let Some(Value::Object(root)) = components.get_mut(name) {
            root.insert(GVK_EXTENSION.into(), gvk(group, "v1", kind));
        }
    }
    for rule in PATCH_RULES {
        let property = components
            .get_mut(rule.type_name)
            .and_then(|t| t.get_mut("properties"))
            .and_then(|p| p.get_mut(rule.property))
            .and_then(Value::as_object_mut);
        if let Some(property) = property {
            property.insert(PATCH_STRATEGY_EXTENSION.into(), rule.strategy.into());
            if let Some(key) = rule.merge_key {
                property.insert(PATCH_MERGE_KEY_EXTENSION.into(), key.into());
            }
        }
    }
    components
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "version": version, "kind": kind}])
}

fn list_schema(resource: &ResourceType, list_meta: &Value) -> Value {
    json!({
        "description": format!("{}List is a list of {}.", resource.kind, resource.kind),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.",
                "type": "string",
            },
            "items": {
                "description": format!("List of {}.", resource.plural),
                "type": "array",
                "items": {"$ref": reference(&root_schema_name(resource))},
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.",
                "type": "string",
            },
            "metadata": {
                "description": "Standard list metadata.",
                "allOf": [list_meta],
            },
        },
        "required": ["items"],
        GVK_EXTENSION: gvk(resource.group, resource.version, &resource.list_kind()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn pod_containers_carry_the_name_merge_key() {
        let containers =
            &component("io.k8s.api.core.v1.PodSpec").expect("PodSpec")["properties"]["containers"];
        assert_eq!(containers[PATCH_MERGE_KEY_EXTENSION], "name");
        assert_eq!(containers[PATCH_STRATEGY_EXTENSION], "merge");
        assert_eq!(patch_meta(containers), (Some("merge"), Some("name")));
    }

    #[test]
    fn object_meta_merges_finalizers_and_owner_references() {
        let meta = &component(OBJECT_META).expect("ObjectMeta")["properties"];
        assert_eq!(patch_meta(&meta["finalizers"]), (Some("merge"), None));
        assert_eq!(
            patch_meta(&meta["ownerReferences"]),
            (Some("merge"), Some("uid"))
        );
    }

    #[test]
    fn every_patch_rule_names_an_existing_property() {
        for rule in PATCH_RULES {
            let property = component(rule.type_name)
                .and_then(|t| t.get("properties"))
                .and_then(|p| p.get(rule.property));
            assert!(
                property.is_some(),
                "{}.{} does not exist",
                rule.type_name,
                rule.property
            );
        }
    }

    #[test]
    fn every_root_kind_and_list_has_its_group_version_kind() {
        for r in RESOURCES {
            let root = component(&root_schema_name(r)).expect("root schema");
            assert_eq!(
                root[GVK_EXTENSION],
                gvk(r.group, r.version, r.kind),
                "{}",
                r.kind
            );
            let list = component(&list_schema_name(r)).expect("list schema");
            assert_eq!(list[GVK_EXTENSION][0]["kind"], r.list_kind());
        }
    }

    #[test]
    fn every_reference_resolves_to_a_component() {
        let mut all = Vec::new();
        for schema in components().values() {
            refs(schema, &mut all);
        }
        assert!(!all.is_empty());
        for r in all {
            let name = r
                .strip_prefix(REF_PREFIX)
                .unwrap_or_else(|| panic!("foreign reference {r}"));
            assert!(component(name).is_some(), "dangling reference {r}");
        }
    }

    #[test]
    fn resolve_follows_described_references() {
        let metadata = &component("io.k8s.api.core.v1.Pod").expect("Pod")["properties"]["metadata"];
        assert!(metadata.get("description").is_some());
        let resolved = resolve(metadata);
        assert!(resolved["properties"].get("finalizers").is_some());
    }

    #[test]
    fn component_names_follow_kubernetes() {
        let deployment = RESOURCES
            .iter()
            .find(|r| r.kind == "Deployment")
            .expect("Deployment served");
        assert_eq!(
            root_schema_name(deployment),
            "io.k8s.api.apps.v1.Deployment"
        );
        assert!(component("io.k8s.api.autoscaling.v1.Scale").is_some());
        assert!(component("io.k8s.apimachinery.pkg.apis.meta.v1.Status").is_some());
    }
}
