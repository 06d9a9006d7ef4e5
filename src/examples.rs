//! The examples `wasmpod up` deploys: every manifest in
//! `<examples>/manifests/*.yaml`, with the placeholder `WASM_EXAMPLES_OUT`
//! replaced by the absolute path of the built modules (`<examples>/out`).
//! Objects that already exist are left as they are, so a second `up` on the
//! same data dir changes nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;
use wasmpod_api::registry;

/// The placeholder the example manifests use for the built modules' directory.
const OUT_PLACEHOLDER: &str = "WASM_EXAMPLES_OUT";

/// One object of an example manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The file it came from, for messages.
    pub file: PathBuf,
    pub object: Value,
}

/// Reads every manifest of the examples dir, in file name order.
pub fn load(examples: &Path) -> anyhow::Result<Vec<Manifest>> {
    let out = examples.join("out");
    let out = out.canonicalize().with_context(|| {
        format!(
            "{}: build the examples first (scripts/build-examples.sh)",
            out.display()
        )
    })?;
    let dir = examples.join("manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut manifests = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let text = text.replace(OUT_PLACEHOLDER, &out.display().to_string());
        for object in parse_documents(&text).with_context(|| format!("{}", file.display()))? {
            manifests.push(Manifest {
                file: file.clone(),
                object,
            });
        }
    }
    Ok(manifests)
}

/// The non-empty YAML documents of a manifest file.
fn parse_documents(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// The collection URL path of an object (`/api/v1/namespaces/default/pods`).
fn collection_path(object: &Value, default_namespace: &str) -> anyhow::Result<String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let Some(resource) = registry::by_kind(api_version, kind) else {
        bail!("kind {kind:?} of apiVersion {api_version:?} is not served");
    };
    let prefix = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    Ok(if resource.namespaced {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(default_namespace);
        format!("{prefix}/namespaces/{namespace}/{}", resource.plural)
    } else {
        format!("{prefix}/{}", resource.plural)
    })
}

/// Creates each object through the API at `base_url`; the scheduler places
/// the pods.
pub async fn deploy(base_url: &str, manifests: &[Manifest]) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for manifest in manifests {
        let object = &manifest.object;
        let path = collection_path(object, "default")
            .with_context(|| format!("{}", manifest.file.display()))?;
        let response = client
            .post(format!("{base_url}{path}"))
            .json(object)
            .send()
            .await
            .with_context(|| format!("creating an object of {}", manifest.file.display()))?;
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::CONFLICT {
            continue;
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        bail!(
            "{}: {} {}: {}",
            manifest.file.display(),
            object["kind"].as_str().unwrap_or("object"),
            object["metadata"]["name"].as_str().unwrap_or(""),
            body["message"].as_str().unwrap_or(status.as_str())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_split_and_empty_ones_skipped() {
        let docs = parse_documents("a: 1\n---\n---\nb: 2\n").expect("valid yaml");
        assert_eq!(
            docs,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
    }

    #[test]
    fn paths_follow_the_kind() {
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(
            collection_path(&pod, "default").expect("served"),
            "/api/v1/namespaces/default/pods"
        );
        let job = serde_json::json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "namespace": "ci"}});
        assert_eq!(
            collection_path(&job, "default").expect("served"),
            "/apis/batch/v1/namespaces/ci/jobs"
        );
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace"});
        assert_eq!(
            collection_path(&ns, "default").expect("served"),
            "/api/v1/namespaces"
        );
        let bad = serde_json::json!({"apiVersion": "v9", "kind": "Nope"});
        assert!(collection_path(&bad, "default").is_err());
    }

    #[test]
    fn the_repository_examples_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("wasm-examples/manifests");
        for entry in std::fs::read_dir(dir).expect("the examples' manifests") {
            let text = std::fs::read_to_string(entry.expect("an entry").path()).expect("readable");
            for object in parse_documents(&text).expect("valid yaml") {
                collection_path(&object, "default").expect("a served kind");
            }
        }
    }
}
