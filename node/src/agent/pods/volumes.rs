//! A pod's volumes as directories on the node: `emptyDir` under the pod's
//! directory (removed with the pod), `hostPath` as given, ConfigMap, Secret,
//! downward API and projected volumes as files written into the pod's
//! directory (rewritten when the objects change), and
//! `persistentVolumeClaim` as the directory of the claim's bound volume,
//! which outlives the pod (see `claims`). Containers get them as preopened
//! [`Mount`]s.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use wasmpod_api::k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, KeyToPath, Pod, Volume,
};

use super::api::PodApi;
use super::claims;
use super::container_spec::{SpecContext, config_map_entries, secret_entries};
use crate::agent::container_runtime::{Mount, StartError};

/// The directories of one pod's volumes, by volume name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodVolumes {
    dirs: HashMap<String, VolumeDir>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct VolumeDir {
    path: PathBuf,
    /// Projected volumes are read-only for the pod, as in Kubernetes.
    read_only: bool,
}

/// Where a node keeps volume directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRoots {
    /// The pod's own directory (`<data>/pods/<uid>`).
    pub pod_dir: PathBuf,
    /// The parent of every claim's directory (`<data>/volumes`).
    pub claims_dir: PathBuf,
}

/// Makes every volume of `pod` exist with its current content. Calling it
/// again refreshes ConfigMap, Secret and downward API files.
pub async fn prepare<A: PodApi>(
    api: &A,
    ctx: &SpecContext<'_>,
    roots: &VolumeRoots,
) -> Result<PodVolumes, StartError> {
    let mut dirs = HashMap::new();
    for volume in ctx.pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let dir = prepare_one(api, ctx, roots, volume).await?;
        dirs.insert(volume.name.clone(), dir);
    }
    Ok(PodVolumes { dirs })
}

/// True if the pod has volumes whose files follow API objects.
pub fn has_projections(pod: &Pod) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| {
            v.config_map.is_some()
                || v.secret.is_some()
                || v.projected.is_some()
                || v.downward_api.is_some()
        })
}

impl PodVolumes {
    /// The preopened directories of one container, from its volumeMounts.
    pub fn mounts(&self, container: &Container) -> Result<Vec<Mount>, StartError> {
        let mut mounts = Vec::new();
        for m in container.volume_mounts.iter().flatten() {
            let dir = self.dirs.get(&m.name).ok_or_else(|| {
                StartError::CreateContainerConfig(format!(
                    "volume {:?} is not defined in the pod",
                    m.name
                ))
            })?;
            let mut host_path = dir.path.clone();
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                host_path = host_path.join(relative(sub)?);
                std::fs::create_dir_all(&host_path).map_err(|e| {
                    StartError::CreateContainerConfig(format!(
                        "creating subPath {sub:?} of volume {:?}: {e}",
                        m.name
                    ))
                })?;
            }
            mounts.push(Mount {
                host_path,
                guest_path: m.mount_path.clone(),
                read_only: dir.read_only || m.read_only == Some(true),
            });
        }
        Ok(mounts)
    }
}

/// Removes a pod's directory: its emptyDirs, projected files and logs.
pub async fn remove_pod_dir(pod_dir: &Path) {
    match tokio::fs::remove_dir_all(pod_dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %pod_dir.display(), error = %e, "removing a pod's directory")
        }
    }
}

async fn prepare_one<A: PodApi>(
    api: &A,
    ctx: &SpecContext<'_>,
    roots: &VolumeRoots,
    volume: &Volume,
) -> Result<VolumeDir, StartError> {
    let ns = ctx.pod_ref.namespace.as_str();
    let own = roots.pod_dir.join("volumes").join(&volume.name);
    let fail = |what: String| {
        StartError::CreateContainerConfig(format!("volume {:?}: {what}", volume.name))
    };
    if volume.empty_dir.is_some() {
        create_dir(&own).await.map_err(fail)?;
        return Ok(VolumeDir {
            path: own,
            read_only: false,
        });
    }
    if let Some(host) = &volume.host_path {
        let path = PathBuf::from(&host.path);
        match host.type_.as_deref().unwrap_or_default() {
            "DirectoryOrCreate" => create_dir(&path).await.map_err(fail)?,
            "" | "Directory" => {
                if !tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
                    return Err(fail(format!("hostPath {} is not a directory", host.path)));
                }
            }
            other => {
                return Err(fail(format!(
                    "hostPath type {other} is not supported: volumes are directories"
                )));
            }
        }
        return Ok(VolumeDir {
            path,
            read_only: false,
        });
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        let path = claims::claim_dir(api, ns, &claim.claim_name, &roots.claims_dir).await?;
        return Ok(VolumeDir {
            path,
            read_only: claim.read_only == Some(true),
        });
    }
    let mut files = BTreeMap::new();
    if let Some(src) = &volume.config_map {
        let cm = match api.config_map(ns, &src.name).await {
            Ok(cm) => Some(config_map_entries(&cm)),
            Err(e) if e.is_not_found() && src.optional == Some(true) => None,
            Err(e) => return Err(fail(format!("configmap {:?}: {e}", src.name))),
        };
        select(
            &mut files,
            cm,
            src.items.as_deref(),
            src.optional == Some(true),
        )
        .map_err(fail)?;
    } else if let Some(src) = &volume.secret {
        let name = src.secret_name.clone().unwrap_or_default();
        let secret = match api.secret(ns, &name).await {
            Ok(s) => Some(secret_entries(&s)),
            Err(e) if e.is_not_found() && src.optional == Some(true) => None,
            Err(e) => return Err(fail(format!("secret {name:?}: {e}"))),
        };
        select(
            &mut files,
            secret,
            src.items.as_deref(),
            src.optional == Some(true),
        )
        .map_err(fail)?;
    } else if let Some(src) = &volume.downward_api {
        downward(&mut files, ctx, src.items.as_deref().unwrap_or_default())?;
    } else if let Some(src) = &volume.projected {
        for source in src.sources.iter().flatten() {
            if let Some(p) = &source.config_map {
                let cm = match api.config_map(ns, &p.name).await {
                    Ok(cm) => Some(config_map_entries(&cm)),
                    Err(e) if e.is_not_found() && p.optional == Some(true) => None,
                    Err(e) => return Err(fail(format!("configmap {:?}: {e}", p.name))),
                };
                select(&mut files, cm, p.items.as_deref(), p.optional == Some(true))
                    .map_err(fail)?;
            } else if let Some(p) = &source.secret {
                let secret = match api.secret(ns, &p.name).await {
                    Ok(s) => Some(secret_entries(&s)),
                    Err(e) if e.is_not_found() && p.optional == Some(true) => None,
                    Err(e) => return Err(fail(format!("secret {:?}: {e}", p.name))),
                };
                select(
                    &mut files,
                    secret,
                    p.items.as_deref(),
                    p.optional == Some(true),
                )
                .map_err(fail)?;
            } else if let Some(p) = &source.downward_api {
                downward(&mut files, ctx, p.items.as_deref().unwrap_or_default())?;
            } else {
                return Err(fail(
                    "only configMap, secret and downwardAPI projections are supported".into(),
                ));
            }
        }
    } else {
        return Err(fail("unsupported volume type".into()));
    }
    project(&own, &files).await.map_err(fail)?;
    Ok(VolumeDir {
        path: own,
        read_only: true,
    })
}

/// Adds the selected entries of a ConfigMap or Secret (`None`: absent and
/// optional) to the files of a volume.
fn select(
    files: &mut BTreeMap<PathBuf, Vec<u8>>,
    entries: Option<Vec<(String, Vec<u8>)>>,
    items: Option<&[KeyToPath]>,
    optional: bool,
) -> Result<(), String> {
    let Some(entries) = entries else {
        return Ok(());
    };
    match items {
        None => {
            for (key, value) in entries {
                files.insert(relative(&key).map_err(|e| e.to_string())?, value);
            }
        }
        Some(items) => {
            for item in items {
                match entries.iter().find(|(k, _)| *k == item.key) {
                    Some((_, value)) => {
                        let path = relative(&item.path).map_err(|e| e.to_string())?;
                        files.insert(path, value.clone());
                    }
                    None if optional => {}
                    None => return Err(format!("key {:?} not found", item.key)),
                }
            }
        }
    }
    Ok(())
}

/// Adds downward API files.
fn downward(
    files: &mut BTreeMap<PathBuf, Vec<u8>>,
    ctx: &SpecContext<'_>,
    items: &[DownwardAPIVolumeFile],
) -> Result<(), StartError> {
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            super::container_spec::field_value(ctx, &f.field_path)?
        } else if let Some(r) = &item.resource_field_ref {
            let containers = ctx.pod.spec.iter().flat_map(|s| &s.containers);
            let wanted = r.container_name.as_deref().unwrap_or_default();
            let container = containers
                .clone()
                .find(|c| c.name == wanted)
                .ok_or_else(|| {
                    StartError::CreateContainerConfig(format!(
                        "resourceFieldRef: no container {wanted:?}"
                    ))
                })?;
            super::container_spec::resource_value(ctx, container, &r.resource, r.divisor.as_ref())?
        } else {
            String::new()
        };
        files.insert(relative(&item.path)?, value.into_bytes());
    }
    Ok(())
}

/// A path inside a volume: relative, without `..`.
fn relative(path: &str) -> Result<PathBuf, StartError> {
    let p = Path::new(path);
    if path.is_empty()
        || p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(StartError::CreateContainerConfig(format!(
            "{path:?} must be a relative path without '..'"
        )));
    }
    Ok(p.to_path_buf())
}

async fn create_dir(path: &Path) -> Result<(), String> {
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|e| format!("creating {}: {e}", path.display()))
}

/// Makes `dir` hold exactly `files`: changed files are replaced whole
/// (written beside and renamed, so a reader never sees half a file) and
/// files that are no longer wanted are removed. The directory itself stays,
/// so modules that have it open see the new content.
async fn project(dir: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> Result<(), String> {
    let dir = dir.to_path_buf();
    let files = files.clone();
    tokio::task::spawn_blocking(move || project_blocking(&dir, &files))
        .await
        .map_err(|e| format!("projecting files: {e}"))?
}

fn project_blocking(dir: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> Result<(), String> {
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    for existing in walk(dir) {
        let rel = existing
            .strip_prefix(dir)
            .unwrap_or(&existing)
            .to_path_buf();
        if !files.contains_key(&rel) {
            std::fs::remove_file(&existing).map_err(|e| io("removing", &existing, e))?;
        }
    }
    for (rel, content) in files {
        let target = dir.join(rel);
        if std::fs::read(&target).is_ok_and(|old| old == *content) {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
        }
        let mut tmp = target.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, content).map_err(|e| io("writing", &tmp, e))?;
        std::fs::rename(&tmp, &target).map_err(|e| io("replacing", &target, e))?;
    }
    Ok(())
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_volume() {
        assert!(relative("a/b.txt").is_ok());
        assert!(relative("../etc/passwd").is_err());
        assert!(relative("/etc/passwd").is_err());
        assert!(relative("a/../../b").is_err());
        assert!(relative("").is_err());
    }

    #[test]
    fn projection_replaces_content_and_removes_stale_files() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let dir = tmp.path().join("vol");
        let mut files = BTreeMap::from([
            (PathBuf::from("a"), b"1".to_vec()),
            (PathBuf::from("sub/b"), b"2".to_vec()),
        ]);
        project_blocking(&dir, &files).expect("projects");
        assert_eq!(std::fs::read(dir.join("sub/b")).expect("b"), b"2");
        files.remove(&PathBuf::from("sub/b"));
        files.insert(PathBuf::from("a"), b"changed".to_vec());
        project_blocking(&dir, &files).expect("projects again");
        assert_eq!(std::fs::read(dir.join("a")).expect("a"), b"changed");
        assert!(!dir.join("sub/b").exists());
    }

    #[test]
    fn selected_items_land_at_their_paths_and_missing_keys_fail() {
        let entries = vec![("k".to_string(), b"v".to_vec())];
        let item = |key: &str| KeyToPath {
            key: key.into(),
            path: "conf/k.txt".into(),
            mode: None,
        };
        let mut files = BTreeMap::new();
        select(&mut files, Some(entries.clone()), Some(&[item("k")]), false).expect("selects");
        assert_eq!(files[&PathBuf::from("conf/k.txt")], b"v");
        assert!(
            select(
                &mut files,
                Some(entries.clone()),
                Some(&[item("missing")]),
                false
            )
            .is_err()
        );
        assert!(select(&mut files, Some(entries), Some(&[item("missing")]), true).is_ok());
        assert!(select(&mut files, None, None, true).is_ok());
    }
}
