//! The plain (unaggregated) discovery documents `kubectl` reads before any
//! other request: `/version`, `/api`, `/apis`, `/apis/{group}` and the
//! resource lists of every served group-version, all derived from the kind
//! registry.

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wasmpod_api::registry::{self, GROUPS, ResourceType, Subresource};

/// The verbs of a top-level resource, as kube-apiserver lists them.
const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces are deleted one at a time through finalization, so kube-apiserver
/// offers no `deletecollection` for them.
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// `GET /version`: the Kubernetes API level implemented, in the shape of
/// `version.Info`. kubectl compares `major`/`minor` with its own version to
/// decide whether to warn about skew, so they name the Kubernetes release
/// whose API is served, and wasmpod's own version rides in `gitVersion`'s
/// build metadata as k3s does.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": wasmpod_api::KUBERNETES_MINOR,
        "gitVersion": format!("v1.{}.0+wasmpod.{}", wasmpod_api::KUBERNETES_MINOR, env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": build_date(),
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", go_os(std::env::consts::OS), go_arch(std::env::consts::ARCH)),
    })
}

/// The build date in RFC 3339, taken from `SOURCE_DATE_EPOCH` at compile time
/// when a reproducible build sets it, and the Unix epoch otherwise: a build
/// must not embed the wall clock, or two builds of one commit would differ.
fn build_date() -> String {
    const EPOCH: &str = "1970-01-01T00:00:00Z";
    option_env!("SOURCE_DATE_EPOCH")
        .and_then(|secs| secs.trim().parse::<i64>().ok())
        .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| EPOCH.to_string())
}

/// Rust's `std::env::consts::OS` in Go's `GOOS` spelling.
fn go_os(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

/// Rust's `std::env::consts::ARCH` in Go's `GOARCH` spelling.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `GET /api`: the legacy core group's `APIVersions`. The server does not
/// know the address clients reach it by, so it names no address; use
/// [`api_versions_at`] when it does.
pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    })
}

/// `GET /api` naming `server_address` (`host:port`) as the address for every client.
pub fn api_versions_at(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `GET /apis`: every named group, each with its one version preferred.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUPS.iter().map(|group| group_body(group)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`, or `None` when the group is not served.
pub fn api_group(group: &str) -> Option<Value> {
    let group = GROUPS.iter().find(|g| **g == group)?;
    let mut body = group_body(group);
    if let Value::Object(map) = &mut body {
        map.insert("kind".into(), "APIGroup".into());
        map.insert("apiVersion".into(), "v1".into());
    }
    Some(body)
}

/// The `name`/`versions`/`preferredVersion` triple of one group. Every group
/// serves `v1` only, which is therefore its preferred version.
fn group_body(group: &str) -> Value {
    let version = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
    json!({"name": group, "versions": [version.clone()], "preferredVersion": version})
}

/// `GET /api/v1` (group `""`) or `GET /apis/{group}/{version}`: the
/// `APIResourceList` of one group-version with its subresources, or `None`
/// when nothing is served there.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources: Vec<Value> = Vec::new();
    for resource in registry::in_group_version(group, version) {
        resources.push(resource_entry(resource));
        resources.extend(subresource_entries(resource));
    }
    if resources.is_empty() {
        return None;
    }
    // kube-apiserver lists resources by name, which also puts each
    // subresource right after its parent.
    resources.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list = serde_json::Map::new();
    list.insert("kind".into(), "APIResourceList".into());
    // The core group's list carries no apiVersion in kube-apiserver's answer;
    // named groups' lists do.
    if !group.is_empty() {
        list.insert("apiVersion".into(), "v1".into());
    }
    list.insert("groupVersion".into(), group_version.into());
    list.insert("resources".into(), resources.into());
    Some(Value::Object(list))
}

/// The `APIResource` of a top-level resource.
fn resource_entry(resource: &ResourceType) -> Value {
    let verbs = if resource.group.is_empty() && resource.plural == "namespaces" {
        NAMESPACE_VERBS
    } else {
        ALL_VERBS
    };
    let mut entry = serde_json::Map::new();
    entry.insert("name".into(), resource.plural.into());
    entry.insert("singularName".into(), resource.singular.into());
    entry.insert("namespaced".into(), resource.namespaced.into());
    entry.insert("kind".into(), resource.kind.into());
    entry.insert("verbs".into(), json!(verbs));
    if !resource.short_names.is_empty() {
        entry.insert("shortNames".into(), json!(resource.short_names));
    }
    if !resource.categories.is_empty() {
        entry.insert("categories".into(), json!(resource.categories));
    }
    entry.insert(
        "storageVersionHash".into(),
        storage_version_hash(resource.group, resource.version, resource.kind).into(),
    );
    Value::Object(entry)
}

/// The `APIResource` entries of a resource's subresources. `pods/log` is not
/// a registry subresource (the server proxies it to the node) but is
/// discoverable all the same, as `kubectl logs` expects.
fn subresource_entries(resource: &ResourceType) -> Vec<Value> {
    let mut entries: Vec<Value> = resource
        .subresources
        .iter()
        .map(|sub| {
            let (kind, verbs): (&str, &[&str]) = match sub {
                Subresource::Status => (resource.kind, &["get", "patch", "update"]),
                Subresource::Scale => ("Scale", &["get", "patch", "update"]),
                Subresource::Binding => ("Binding", &["create"]),
                Subresource::Finalize => (resource.kind, &["update"]),
            };
            let mut entry = subresource_entry(resource, sub.name(), kind, verbs);
            if *sub == Subresource::Scale {
                entry.insert("group".into(), "autoscaling".into());
                entry.insert("version".into(), "v1".into());
            }
            Value::Object(entry)
        })
        .collect();
    if resource.group.is_empty() && resource.plural == "pods" {
        entries.push(Value::Object(subresource_entry(
            resource,
            "log",
            "Pod",
            &["get"],
        )));
    }
    entries
}

fn subresource_entry(
    resource: &ResourceType,
    sub: &str,
    kind: &str,
    verbs: &[&str],
) -> serde_json::Map<String, Value> {
    let mut entry = serde_json::Map::new();
    entry.insert("name".into(), format!("{}/{sub}", resource.plural).into());
    entry.insert("singularName".into(), "".into());
    entry.insert("namespaced".into(), resource.namespaced.into());
    entry.insert("kind".into(), kind.into());
    entry.insert("verbs".into(), json!(verbs));
    entry
}

/// kube-apiserver's storage version hash: the first 8 bytes of the SHA-256 of
/// `group/version/kind`, base64-encoded. Clients only compare it for equality
/// (to notice storage migrations), so computing it the same way keeps the
/// values identical to a Kubernetes cluster's.
fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    let digest = Sha256::digest(format!("{group}/{version}/{kind}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
        list["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|e| e["name"] == name))
            .unwrap_or_else(|| panic!("{name} missing from {list}"))
    }

    #[test]
    fn version_reports_kubernetes_level_with_wasmpod_build_metadata() {
        let v = version();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "32");
        let git = v["gitVersion"].as_str().unwrap_or_default();
        assert_eq!(
            git,
            format!("v1.32.0+wasmpod.{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(v["compiler"], "rustc");
        let platform = v["platform"].as_str().unwrap_or_default();
        assert!(
            !platform.contains("x86_64") && !platform.contains("aarch64"),
            "{platform}"
        );
        assert!(v["buildDate"].as_str().is_some_and(|d| d.ends_with('Z')));
    }

    #[test]
    fn platform_names_use_go_spelling() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("riscv64"), "riscv64");
        assert_eq!(go_os("macos"), "darwin");
        assert_eq!(go_os("linux"), "linux");
    }

    #[test]
    fn api_lists_only_v1() {
        let v = api_versions();
        assert_eq!(v["kind"], "APIVersions");
        assert_eq!(v["versions"], json!(["v1"]));
        assert!(v["serverAddressByClientCIDRs"].is_array());
        let at = api_versions_at("10.0.0.1:6443");
        assert_eq!(
            at["serverAddressByClientCIDRs"][0]["serverAddress"],
            "10.0.0.1:6443"
        );
    }

    #[test]
    fn group_list_names_every_group_with_preferred_v1() {
        let list = api_group_list();
        assert_eq!(list["kind"], "APIGroupList");
        let groups = list["groups"].as_array().cloned().unwrap_or_default();
        assert_eq!(groups.len(), GROUPS.len());
        for (group, body) in GROUPS.iter().zip(&groups) {
            assert_eq!(body["name"], *group);
            assert_eq!(
                body["preferredVersion"]["groupVersion"],
                format!("{group}/v1")
            );
            assert_eq!(body["versions"][0]["version"], "v1");
        }
    }

    #[test]
    fn unknown_group_is_not_found() {
        assert!(api_group("extensions").is_none());
        let apps = api_group("apps").unwrap_or_default();
        assert_eq!(apps["kind"], "APIGroup");
        assert_eq!(apps["preferredVersion"]["version"], "v1");
    }

    #[test]
    fn core_resource_list_describes_pods_like_kube_apiserver() {
        let list = resource_list("", "v1").unwrap_or_default();
        assert_eq!(list["groupVersion"], "v1");
        let pods = resource(&list, "pods");
        assert_eq!(pods["singularName"], "pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["kind"], "Pod");
        assert_eq!(pods["verbs"], json!(ALL_VERBS));
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(
            resource(&list, "pods/status")["verbs"],
            json!(["get", "patch", "update"])
        );
        assert_eq!(resource(&list, "pods/binding")["kind"], "Binding");
        assert_eq!(resource(&list, "pods/binding")["verbs"], json!(["create"]));
        assert_eq!(resource(&list, "pods/log")["kind"], "Pod");
        assert_eq!(resource(&list, "pods/log")["verbs"], json!(["get"]));
        assert_eq!(
            resource(&list, "namespaces/finalize")["verbs"],
            json!(["update"])
        );
        assert_eq!(resource(&list, "namespaces")["namespaced"], false);
        assert!(
            !resource(&list, "namespaces")["verbs"]
                .as_array()
                .is_some_and(|v| v.contains(&json!("deletecollection")))
        );
    }

    #[test]
    fn storage_version_hash_matches_kube_apiserver() {
        // Values served by Kubernetes clusters for pods and configmaps.
        assert_eq!(storage_version_hash("", "v1", "Pod"), "xPOwRZ+Yhw8=");
        assert_eq!(storage_version_hash("", "v1", "ConfigMap"), "qFsyl6wFWjQ=");
    }

    #[test]
    fn scale_subresource_names_autoscaling_group() {
        let list = resource_list("apps", "v1").unwrap_or_default();
        assert_eq!(list["groupVersion"], "apps/v1");
        let scale = resource(&list, "deployments/scale");
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["version"], "v1");
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["verbs"], json!(["get", "patch", "update"]));
        assert!(resource(&list, "daemonsets").get("shortNames").is_some());
    }

    #[test]
    fn resources_are_sorted_by_name() {
        let list = resource_list("", "v1").unwrap_or_default();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .map(|r| r.iter().filter_map(|e| e["name"].as_str()).collect())
            .unwrap_or_default();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn every_group_version_has_a_resource_list() {
        assert!(resource_list("", "v1").is_some());
        for group in GROUPS {
            assert!(resource_list(group, "v1").is_some(), "{group}");
        }
        assert!(resource_list("apps", "v1beta1").is_none());
        assert!(resource_list("autoscaling", "v1").is_none());
    }
}
