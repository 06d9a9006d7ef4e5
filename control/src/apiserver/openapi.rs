//! OpenAPI v3 as kubectl consumes it: the `/openapi/v3` index naming one
//! document per group-version, and the documents themselves, each with the
//! paths of that group-version's resources and only the schema components
//! they reach. `kubectl apply`/`create` refuse to run without them, and
//! `kubectl explain` reads its field documentation from them.
//!
//! Documents are built and serialized once, on first use; their content
//! hash, part of each index URL, lets clients cache them until the server
//! changes.

mod params;
mod paths;

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use wasmpod_api::registry::{GROUPS, in_group_version};
use wasmpod_api::schema::{REF_PREFIX, components};

/// One served document.
struct Published {
    /// The index key: `api/v1`, `apis/apps/v1`.
    key: String,
    bytes: Arc<Bytes>,
    /// Uppercase hex SHA-256 of `bytes`.
    hash: String,
}

static DOCUMENTS: LazyLock<Vec<Published>> = LazyLock::new(|| {
    group_versions()
        .into_iter()
        .map(|(group, version)| {
            let doc = build_document(&group, &version);
            // Serializing a serde_json::Value cannot fail: its keys are strings.
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = format!("{:X}", Sha256::digest(&bytes));
            Published {
                key: key(&group, &version),
                bytes: Arc::new(Bytes::from(bytes)),
                hash,
            }
        })
        .collect()
});

/// Every served group-version: the core `v1` and each named group's `v1`.
fn group_versions() -> Vec<(String, String)> {
    std::iter::once(("".to_string(), "v1".to_string()))
        .chain(GROUPS.iter().map(|g| (g.to_string(), "v1".to_string())))
        .collect()
}

/// `api/v1` for the core group, `apis/{group}/{version}` otherwise.
fn key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL":
/// "/openapi/v3/api/v1?hash=..."}, ...}}`.
pub fn index() -> Value {
    let paths: Map<String, Value> = DOCUMENTS
        .iter()
        .map(|d| {
            let url = format!("/openapi/v3/{}?hash={}", d.key, d.hash);
            (d.key.clone(), json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// The serialized document of one group-version. `path` may be the index
/// key (`apis/apps/v1`) or the request path (`/openapi/v3/apis/apps/v1`).
pub fn document(path: &str) -> Option<Arc<Bytes>> {
    find(path).map(|d| Arc::clone(&d.bytes))
}

/// The content hash of a document (the `hash` of its index URL), for
/// `ETag` and for telling whether a request names the current version.
pub fn document_hash(path: &str) -> Option<&'static str> {
    find(path).map(|d| d.hash.as_str())
}

fn find(path: &str) -> Option<&'static Published> {
    let path = path.split('?').next().unwrap_or(path);
    let key = path.trim_start_matches('/');
    let key = key
        .strip_prefix("openapi/v3/")
        .unwrap_or(key)
        .trim_end_matches('/');
    DOCUMENTS.iter().find(|d| d.key == key)
}

/// The document of one group-version, before serialization.
fn build_document(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut roots: Vec<String> = vec![
        paths::STATUS.into(),
        paths::DELETE_OPTIONS.into(),
        paths::PATCH.into(),
    ];
    for resource in in_group_version(group, version) {
        paths::add_resource_paths(&mut paths, resource);
        roots.extend(paths::referenced_components(resource));
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", wasmpod_api::KUBERNETES_MINOR)},
        "paths": paths,
        "components": {"schemas": reachable_schemas(&roots)},
    })
}

/// The body schema of PATCH requests. It is not a Go type with a generated
/// schema, so it is written out here as kube-apiserver publishes it.
fn patch_schema() -> Value {
    json!({
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        "type": "object",
    })
}

/// The components named by `roots` and every component they reference,
/// transitively. A name that is not a component is left out (and logged),
/// so a document never grows a dangling `$ref` of its own making.
fn reachable_schemas(roots: &[String]) -> Map<String, Value> {
    let all = components();
    let patch = patch_schema();
    let lookup = |name: &str| -> Option<Value> {
        match all.get(name) {
            Some(schema) => Some(schema.clone()),
            None if name == paths::PATCH => Some(patch.clone()),
            None => None,
        }
    };
    let mut schemas = Map::new();
    let mut pending: Vec<String> = roots.to_vec();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(schema) = lookup(&name) else {
            tracing::warn!(component = %name, "OpenAPI document references a schema that does not exist");
            continue;
        };
        collect_refs(&schema, &mut pending);
        schemas.insert(name, schema);
    }
    schemas
}

/// Pushes the component name of every `$ref` inside `schema`.
fn collect_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
            {
                out.push(name.to_string());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(path: &str) -> Value {
        let bytes = document(path).unwrap_or_else(|| panic!("no document at {path}"));
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    fn has_param(op: &Value, name: &str) -> bool {
        op["parameters"].as_array().is_some_and(|params| {
            params
                .iter()
                .any(|p| p["name"] == name && p["in"] == "query")
        })
    }

    #[test]
    fn index_lists_every_group_version_with_its_hash() {
        let index = index();
        let paths = index["paths"].as_object().cloned().unwrap_or_default();
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        assert!(keys.contains(&"api/v1"));
        for group in GROUPS {
            let key = format!("apis/{group}/v1");
            let url = paths[&key]["serverRelativeURL"]
                .as_str()
                .unwrap_or_default();
            let hash = document_hash(&key).unwrap_or_default();
            assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
            assert_eq!(hash.len(), 64);
            assert!(
                hash.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
            );
        }
        assert_eq!(paths.len(), GROUPS.len() + 1);
    }

    #[test]
    fn hash_is_the_digest_of_the_served_bytes() {
        let bytes = document("api/v1").unwrap_or_default();
        assert_eq!(
            document_hash("api/v1"),
            Some(format!("{:X}", Sha256::digest(bytes.as_ref())).as_str())
        );
    }

    #[test]
    fn document_accepts_request_paths() {
        assert!(document("/openapi/v3/apis/apps/v1").is_some());
        assert!(document("apis/apps/v1").is_some());
        assert!(document("/apis/batch/v1?hash=ABC").is_some());
        assert!(document("apis/apps/v1beta1").is_none());
        assert!(document("apis/autoscaling/v1").is_none());
    }

    #[test]
    fn deployment_patch_declares_gvk_and_field_validation() {
        let doc = parsed("/openapi/v3/apis/apps/v1");
        assert_eq!(doc["openapi"], "3.0.0");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert!(has_param(patch, "fieldValidation"));
        for content_type in [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ] {
            assert!(
                patch["requestBody"]["content"].get(content_type).is_some(),
                "{content_type}"
            );
        }
        let ok = &patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(ok, "#/components/schemas/io.k8s.api.apps.v1.Deployment");
    }

    #[test]
    fn every_kind_has_a_patch_with_field_validation_in_its_document() {
        for (group, version) in group_versions() {
            let doc = parsed(&key(&group, &version));
            for resource in in_group_version(&group, &version) {
                let found = doc["paths"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .any(|(_, item)| {
                        let op = &item["patch"];
                        op["x-kubernetes-group-version-kind"]["kind"] == resource.kind
                            && has_param(op, "fieldValidation")
                    });
                assert!(found, "{} has no PATCH with fieldValidation", resource.kind);
            }
        }
    }

    #[test]
    fn components_are_closed_and_carry_root_kinds() {
        let doc = parsed("api/v1");
        let schemas = doc["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let pod = &schemas["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod");
        for name in [
            paths::STATUS,
            paths::DELETE_OPTIONS,
            paths::PATCH,
            paths::BINDING,
            "io.k8s.api.core.v1.PodList",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        for name in refs {
            assert!(schemas.contains_key(&name), "dangling $ref {name}");
        }
    }

    #[test]
    fn documents_hold_only_their_group_versions_schemas() {
        let batch = parsed("apis/batch/v1");
        let schemas = batch["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(schemas.contains_key("io.k8s.api.batch.v1.Job"));
        assert!(schemas.contains_key("io.k8s.api.core.v1.PodTemplateSpec"));
        assert!(!schemas.contains_key("io.k8s.api.apps.v1.Deployment"));
        assert!(!schemas.contains_key("io.k8s.api.core.v1.Service"));
        let paths = batch["paths"].as_object().cloned().unwrap_or_default();
        assert!(paths.keys().all(|p| p.starts_with("/apis/batch/v1/")));
    }
}
