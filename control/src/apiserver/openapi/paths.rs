//! The `paths` of one group-version's OpenAPI v3 document: for every
//! resource its collection, item and subresource paths, each operation
//! tagged with `x-kubernetes-action` and `x-kubernetes-group-version-kind`
//! and carrying the query parameters kube-apiserver documents (kubectl reads
//! `fieldValidation` on PATCH to decide it may validate server-side).

use serde_json::{Map, Value, json};
use wasmpod_api::registry::{ResourceType, Subresource};
use wasmpod_api::schema::{list_schema_name, reference, root_schema_name};

use super::params::{
    DELETE_PARAMS, DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE, LIST_PARAMS, LOG_PARAMS, NAME,
    NAMESPACE, PRETTY, Param, params,
};

pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
pub(super) const BINDING: &str = "io.k8s.api.core.v1.Binding";

/// The patch formats the server accepts on PATCH.
const PATCH_CONTENT_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// The representations objects are served in.
const RESPONSE_CONTENT_TYPES: &[&str] = &["application/json", "application/yaml"];

/// The schema components that the paths of `resource` reference.
pub(super) fn referenced_components(resource: &ResourceType) -> Vec<String> {
    let mut names = vec![root_schema_name(resource), list_schema_name(resource)];
    if resource.has(Subresource::Scale) {
        names.push(SCALE.to_string());
    }
    if resource.has(Subresource::Binding) {
        names.push(BINDING.to_string());
    }
    names
}

/// Adds every path of `resource` to `paths`.
pub(super) fn add_resource_paths(paths: &mut Map<String, Value>, resource: &ResourceType) {
    let namer = Namer::new(resource);
    let prefix = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    let kind = root_schema_name(resource);
    let kind_gvk = gvk(resource.group, resource.version, resource.kind);
    let plural = resource.plural;

    let (collection, mut scope_params) = if resource.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{plural}"),
            vec![&NAMESPACE],
        )
    } else {
        (format!("{prefix}/{plural}"), Vec::new())
    };

    let mut ops = Map::new();
    let mut list = operation(
        &namer,
        "list",
        "list",
        &kind_gvk,
        format!("list or watch objects of kind {}", resource.kind),
    );
    list["parameters"] = params(LIST_PARAMS.iter());
    list["responses"] = responses(&[("200", "OK")], &list_schema_name(resource), true);
    ops.insert("get".into(), list);
    ops.insert(
        "post".into(),
        write(
            &namer,
            "create",
            "post",
            &kind_gvk,
            format!("create a {}", resource.kind),
            &kind,
            None,
        ),
    );
    let mut delete_all = operation(
        &namer,
        "deleteCollection",
        "deletecollection",
        &kind_gvk,
        format!("delete collection of {}", resource.kind),
    );
    delete_all["parameters"] = params(DELETE_PARAMS.iter().chain(LIST_PARAMS));
    delete_all["requestBody"] = body(&["application/json"], DELETE_OPTIONS);
    delete_all["responses"] = responses(&[("200", "OK")], STATUS, false);
    ops.insert("delete".into(), delete_all);
    insert_path(paths, collection.clone(), ops, &scope_params);

    if resource.namespaced {
        let mut all = operation(
            &namer,
            "list",
            "list",
            &kind_gvk,
            format!("list or watch objects of kind {}", resource.kind),
        );
        all["operationId"] = format!(
            "list{}{}{}ForAllNamespaces",
            namer.group, namer.version, resource.kind
        )
        .into();
        all["parameters"] = params(LIST_PARAMS.iter());
        all["responses"] = responses(&[("200", "OK")], &list_schema_name(resource), true);
        let mut ops = Map::new();
        ops.insert("get".into(), all);
        insert_path(paths, format!("{prefix}/{plural}"), ops, &[]);
    }

    scope_params.insert(0, &NAME);
    let item = format!("{collection}/{{name}}");
    let mut ops = Map::new();
    let mut read = operation(
        &namer,
        "read",
        "get",
        &kind_gvk,
        format!("read the specified {}", resource.kind),
    );
    read["responses"] = responses(&[("200", "OK")], &kind, false);
    ops.insert("get".into(), read);
    ops.insert(
        "put".into(),
        write(
            &namer,
            "replace",
            "put",
            &kind_gvk,
            format!("replace the specified {}", resource.kind),
            &kind,
            None,
        ),
    );
    ops.insert(
        "patch".into(),
        write(
            &namer,
            "patch",
            "patch",
            &kind_gvk,
            format!("partially update the specified {}", resource.kind),
            &kind,
            None,
        ),
    );
    let mut delete = operation(
        &namer,
        "delete",
        "delete",
        &kind_gvk,
        format!("delete a {}", resource.kind),
    );
    delete["parameters"] = params(DELETE_PARAMS.iter());
    delete["requestBody"] = body(&["application/json"], DELETE_OPTIONS);
    // Pods are deleted gracefully, so their delete answers with the pod
    // marked for deletion rather than a Status.
    let deleted = if resource.group.is_empty() && plural == "pods" {
        kind.as_str()
    } else {
        STATUS
    };
    delete["responses"] = responses(&[("200", "OK"), ("202", "Accepted")], deleted, false);
    ops.insert("delete".into(), delete);
    insert_path(paths, item.clone(), ops, &scope_params);

    for sub in resource.subresources {
        let path = format!("{item}/{}", sub.name());
        let ops = match sub {
            Subresource::Status => {
                read_write(&namer, &kind_gvk, resource.kind, "Status", "status", &kind)
            }
            Subresource::Scale => read_write(
                &namer,
                &gvk("autoscaling", "v1", "Scale"),
                resource.kind,
                "Scale",
                "scale",
                SCALE,
            ),
            Subresource::Binding => {
                let binding_gvk = gvk("", "v1", "Binding");
                let description = format!("create binding of a {}", resource.kind);
                let mut ops = Map::new();
                ops.insert(
                    "post".into(),
                    write(
                        &namer,
                        "create",
                        "post",
                        &binding_gvk,
                        description,
                        BINDING,
                        Some("Binding"),
                    ),
                );
                ops
            }
            Subresource::Finalize => {
                let description = format!("replace finalize of the specified {}", resource.kind);
                let mut ops = Map::new();
                ops.insert(
                    "put".into(),
                    write(
                        &namer,
                        "replace",
                        "put",
                        &kind_gvk,
                        description,
                        &kind,
                        Some("Finalize"),
                    ),
                );
                ops
            }
        };
        insert_path(paths, path, ops, &scope_params);
    }

    if resource.group.is_empty() && plural == "pods" {
        let mut log = operation(
            &namer,
            "read",
            "get",
            &kind_gvk,
            "read log of the specified Pod".to_string(),
        );
        log["operationId"] = namer.operation_id("read", Some("Log")).into();
        log["parameters"] = params(LOG_PARAMS.iter());
        log["responses"] = json!({
            "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}},
            "401": {"description": "Unauthorized"},
        });
        let mut ops = Map::new();
        ops.insert("get".into(), log);
        insert_path(paths, format!("{item}/log"), ops, &scope_params);
    }
}

/// The get/put/patch operations of a status or scale subresource.
fn read_write(
    namer: &Namer,
    gvk: &Value,
    kind: &str,
    suffix: &str,
    sub: &str,
    schema: &str,
) -> Map<String, Value> {
    let mut ops = Map::new();
    let mut read = operation(
        namer,
        "read",
        "get",
        gvk,
        format!("read {sub} of the specified {kind}"),
    );
    read["operationId"] = namer.operation_id("read", Some(suffix)).into();
    read["responses"] = responses(&[("200", "OK")], schema, false);
    ops.insert("get".into(), read);
    let replace = write(
        namer,
        "replace",
        "put",
        gvk,
        format!("replace {sub} of the specified {kind}"),
        schema,
        Some(suffix),
    );
    ops.insert("put".into(), replace);
    let patch = write(
        namer,
        "patch",
        "patch",
        gvk,
        format!("partially update {sub} of the specified {kind}"),
        schema,
        Some(suffix),
    );
    ops.insert("patch".into(), patch);
    ops
}

/// A create, replace or patch operation on `schema`.
fn write(
    namer: &Namer,
    verb: &str,
    action: &str,
    gvk: &Value,
    description: String,
    schema: &str,
    suffix: Option<&str>,
) -> Value {
    let mut op = operation(namer, verb, action, gvk, description);
    op["operationId"] = namer.operation_id(verb, suffix).into();
    let (parameters, content_types, statuses): (Vec<&Param>, &[&str], &[(&str, &str)]) =
        match action {
            "patch" => (
                vec![&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION, &FORCE],
                PATCH_CONTENT_TYPES,
                &[("200", "OK"), ("201", "Created")],
            ),
            "post" => (
                vec![&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION],
                RESPONSE_CONTENT_TYPES,
                &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
            ),
            _ => (
                vec![&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION],
                RESPONSE_CONTENT_TYPES,
                &[("200", "OK"), ("201", "Created")],
            ),
        };
    op["parameters"] = params(parameters.into_iter());
    op["requestBody"] = body(
        content_types,
        if action == "patch" { PATCH } else { schema },
    );
    op["responses"] = responses(statuses, schema, false);
    op
}

/// The fields every operation has.
fn operation(namer: &Namer, verb: &str, action: &str, gvk: &Value, description: String) -> Value {
    json!({
        "description": description,
        "operationId": namer.operation_id(verb, None),
        "tags": [namer.tag.clone()],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    })
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn content(content_types: &[&str], schema: &str) -> Value {
    let reference = json!({"schema": {"$ref": reference(schema)}});
    Value::Object(
        content_types
            .iter()
            .map(|t| (t.to_string(), reference.clone()))
            .collect(),
    )
}

fn body(content_types: &[&str], schema: &str) -> Value {
    json!({"content": content(content_types, schema), "required": true})
}

/// Responses with `schema` for each status, plus the 401 every operation may
/// answer. List responses are also served as watch streams.
fn responses(statuses: &[(&str, &str)], schema: &str, streams: bool) -> Value {
    let mut content_types: Vec<&str> = RESPONSE_CONTENT_TYPES.to_vec();
    if streams {
        content_types.push("application/json;stream=watch");
    }
    let mut map: Map<String, Value> = statuses
        .iter()
        .map(|(code, description)| {
            (
                code.to_string(),
                json!({"description": description, "content": content(&content_types, schema)}),
            )
        })
        .collect();
    map.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(map)
}

/// Adds a path item with its operations and the parameters shared by all of
/// them (`name`, `namespace`, `pretty`).
fn insert_path(
    paths: &mut Map<String, Value>,
    path: String,
    mut ops: Map<String, Value>,
    scope: &[&Param],
) {
    let shared: Vec<Value> = scope
        .iter()
        .map(|p| p.to_json())
        .chain([PRETTY.to_json()])
        .collect();
    ops.insert("parameters".into(), Value::Array(shared));
    paths.insert(path, Value::Object(ops));
}

/// Names operations the way kube-apiserver does: `patchAppsV1NamespacedDeploymentScale`.
struct Namer {
    /// `Core`, `Apps`, `RbacAuthorization`.
    group: String,
    /// `V1`.
    version: String,
    /// `Namespaced` for namespaced kinds.
    scope: &'static str,
    kind: &'static str,
    /// `core_v1`, `rbacAuthorization_v1`.
    tag: String,
}

impl Namer {
    fn new(resource: &ResourceType) -> Self {
        let group = if resource.group.is_empty() {
            "core"
        } else {
            resource.group.trim_end_matches(".k8s.io")
        };
        let words: Vec<&str> = group.split('.').collect();
        let pascal: String = words.iter().map(|w| capitalize(w)).collect();
        let camel = words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.to_string() } else { capitalize(w) })
            .collect::<String>();
        Namer {
            group: pascal,
            version: capitalize(resource.version),
            scope: if resource.namespaced {
                "Namespaced"
            } else {
                ""
            },
            kind: resource.kind,
            tag: format!("{camel}_{}", resource.version),
        }
    }

    /// `verb` + group + version + scope + kind + `suffix`. Collection deletes
    /// put `Collection` before the scope, as kube-apiserver does
    /// (`deleteCoreV1CollectionNamespacedPod`).
    fn operation_id(&self, verb: &str, suffix: Option<&str>) -> String {
        let (verb, collection) = match verb {
            "deleteCollection" => ("delete", "Collection"),
            other => (other, ""),
        };
        format!(
            "{verb}{}{}{collection}{}{}{}",
            self.group,
            self.version,
            self.scope,
            self.kind,
            suffix.unwrap_or("")
        )
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use wasmpod_api::registry::by_kind;

    use super::*;

    fn paths_of(api_version: &str, kind: &str) -> Map<String, Value> {
        let mut paths = Map::new();
        if let Some(resource) = by_kind(api_version, kind) {
            add_resource_paths(&mut paths, resource);
        }
        paths
    }

    #[test]
    fn operation_ids_follow_kube_apiserver() {
        let paths = paths_of("apps/v1", "Deployment");
        let item = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        assert_eq!(
            item["patch"]["operationId"],
            "patchAppsV1NamespacedDeployment"
        );
        assert_eq!(
            paths["/apis/apps/v1/deployments"]["get"]["operationId"],
            "listAppsV1DeploymentForAllNamespaces"
        );
        let collection = &paths["/apis/apps/v1/namespaces/{namespace}/deployments"];
        assert_eq!(
            collection["delete"]["operationId"],
            "deleteAppsV1CollectionNamespacedDeployment"
        );
        let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["patch"]["operationId"],
            "patchAppsV1NamespacedDeploymentScale"
        );
        let rbac = paths_of("rbac.authorization.k8s.io/v1", "ClusterRole");
        let item = &rbac["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"];
        assert_eq!(
            item["get"]["operationId"],
            "readRbacAuthorizationV1ClusterRole"
        );
        assert_eq!(item["get"]["tags"], json!(["rbacAuthorization_v1"]));
    }

    #[test]
    fn scale_operations_name_the_autoscaling_kind() {
        let paths = paths_of("apps/v1", "StatefulSet");
        let scale = &paths["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale"];
        for verb in ["get", "put", "patch"] {
            assert_eq!(
                scale[verb]["x-kubernetes-group-version-kind"],
                gvk("autoscaling", "v1", "Scale")
            );
        }
        assert_eq!(
            scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            reference(SCALE)
        );
    }

    #[test]
    fn core_pod_paths_include_binding_and_log() {
        let paths = paths_of("v1", "Pod");
        let binding = &paths["/api/v1/namespaces/{namespace}/pods/{name}/binding"];
        assert_eq!(
            binding["post"]["x-kubernetes-group-version-kind"],
            gvk("", "v1", "Binding")
        );
        assert_eq!(
            binding["post"]["operationId"],
            "createCoreV1NamespacedPodBinding"
        );
        let log = &paths["/api/v1/namespaces/{namespace}/pods/{name}/log"];
        assert_eq!(log["get"]["operationId"], "readCoreV1NamespacedPodLog");
        assert!(
            log["get"]["responses"]["200"]["content"]
                .get("text/plain")
                .is_some()
        );
        let namespaces = paths_of("v1", "Namespace");
        let finalize = &namespaces["/api/v1/namespaces/{name}/finalize"];
        assert_eq!(
            finalize["put"]["operationId"],
            "replaceCoreV1NamespaceFinalize"
        );
        assert!(
            namespaces
                .get("/api/v1/namespaces/{namespace}/namespaces")
                .is_none()
        );
    }

    #[test]
    fn every_write_operation_offers_field_validation() {
        for (api_version, kind) in [
            ("v1", "Pod"),
            ("apps/v1", "Deployment"),
            ("v1", "Node"),
            ("batch/v1", "Job"),
        ] {
            for (path, item) in paths_of(api_version, kind) {
                for verb in ["post", "put", "patch"] {
                    let Some(op) = item.get(verb) else { continue };
                    let names: Vec<&str> = op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["name"].as_str())
                        .collect();
                    for wanted in ["dryRun", "fieldManager", "fieldValidation"] {
                        assert!(names.contains(&wanted), "{verb} {path} lacks {wanted}");
                    }
                }
            }
        }
    }

    #[test]
    fn patch_accepts_every_patch_format() {
        let paths = paths_of("v1", "ConfigMap");
        let patch = &paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        let types: Vec<&String> = patch["requestBody"]["content"]
            .as_object()
            .map(|c| c.keys().collect())
            .unwrap_or_default();
        assert_eq!(types.len(), PATCH_CONTENT_TYPES.len());
        assert!(
            types
                .iter()
                .any(|t| *t == "application/strategic-merge-patch+json")
        );
        assert_eq!(
            patch["requestBody"]["content"]["application/merge-patch+json"]["schema"]["$ref"],
            reference(PATCH)
        );
    }
}
