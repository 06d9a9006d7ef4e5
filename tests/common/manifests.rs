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

/// One object of every namespaced kind, applied in one multi-document file.
/// Fields that the server defaults inside lists without a merge key are
/// spelled out (e.g. an Endpoints port's protocol): kubectl sends such a
/// list whole whenever the live one differs, so re-applying would never be
/// "unchanged", on Kubernetes as here.
pub fn every_kind(ns: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: app, image: "file:///app.wasm"}}]}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: web-rs}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: rs}}}}
  template:
    metadata: {{labels: {{app: rs}}}}
    spec: {{containers: [{{name: app, image: "file:///app.wasm"}}]}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  serviceName: db
  replicas: 2
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{{name: app, image: "file:///app.wasm"}}]}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec: {{containers: [{{name: app, image: "file:///app.wasm"}}]}}
---
apiVersion: v1
kind: ReplicationController
metadata: {{name: legacy}}
spec:
  replicas: 1
  selector: {{app: legacy}}
  template:
    metadata: {{labels: {{app: legacy}}}}
    spec: {{containers: [{{name: app, image: "file:///app.wasm"}}]}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: once}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: app, image: "file:///app.wasm"}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly}}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{{name: app, image: "file:///app.wasm"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: manual}}
subsets:
- addresses: [{{ip: 10.1.2.3}}]
  ports: [{{port: 8080, protocol: TCP}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{a: "1", b: "2"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
type: Opaque
data: {{password: aHVudGVyMg==}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: robot}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {{name: leader}}
spec: {{holderIdentity: node-a, leaseDurationSeconds: 15}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: reader}}
rules: [{{apiGroups: [""], resources: [pods], verbs: [get, list]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: read-pods}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}
subjects: [{{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}}]
---
apiVersion: apps/v1
kind: ControllerRevision
metadata: {{name: db-rev1}}
revision: 1
data: {{spec: {{template: {{}}}}}}
---
apiVersion: v1
kind: Event
metadata: {{name: web.hello}}
involvedObject: {{kind: Pod, name: web-0, namespace: {ns}, apiVersion: v1}}
reason: Testing
message: hello from the test
type: Normal
source: {{component: e2e}}
count: 1
---
apiVersion: v1
kind: Pod
metadata: {{name: solo}}
spec: {{containers: [{{name: app, image: "file:///app.wasm"}}]}}
"#
    )
}

/// One object of every cluster-scoped kind.
pub fn every_cluster_kind(suffix: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: PersistentVolume
metadata: {{name: pv-{suffix}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  hostPath: {{path: /tmp/pv}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: cr-{suffix}}}
rules: [{{apiGroups: [""], resources: [nodes], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: crb-{suffix}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cr-{suffix}}}
subjects: [{{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}}]
---
apiVersion: v1
kind: Node
metadata: {{name: node-{suffix}, labels: {{kubernetes.io/hostname: node-{suffix}}}}}
"#
    )
}
