//! Small manifests the tests create, as kubectl users write them (YAML).

use std::path::Path;

/// A one-container Pod with `labels`.
pub fn pod(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: String = if labels.is_empty() {
        String::new()
    } else {
        let entries: String = labels
            .iter()
            .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
            .collect();
        format!("  labels:\n{entries}")
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{labels}spec:\n  containers:\n  - name: app\n    image: file:///app.wasm\n"
    )
}

/// A ConfigMap with string `data`.
pub fn configmap(name: &str, data: &[(&str, &str)]) -> String {
    let data: String = data
        .iter()
        .map(|(k, v)| format!("  {k}: \"{v}\"\n"))
        .collect();
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{data}")
}

/// Writes `text` to `dir/file` and returns the path as a kubectl argument.
pub fn write(dir: &Path, file: &str, text: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("writing a manifest");
    path.display().to_string()
}

/// A one-container Deployment whose pods are labelled `app: <name>`, as
/// `kubectl create deployment <name> --image=file:///app.wasm` makes it.
pub fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: \"file:///app.wasm\"}}]
"
    )
}
