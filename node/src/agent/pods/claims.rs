//! A `persistentVolumeClaim` volume as a directory on this node: the claim
//! must be Bound; its PersistentVolume's `hostPath.path` or `local.path`
//! says where the data lives. An absolute path is used as it is (a
//! `hostPath` volume of type DirectoryOrCreate is created, others must
//! exist); a relative path is a directory the local-path provisioner
//! assigned, resolved inside the node's volume directory
//! (`<data dir>/volumes/local-path/<namespace>/<claim>-<uid>`) and created
//! on first use. Data stays there when pods come and go.
//!
//! While the claim is missing or not bound yet the container waits in
//! ContainerCreating ([`StartError::VolumeNotReady`]) and the start is
//! retried.

use std::path::{Component, Path, PathBuf};

use wasmpod_api::k8s_openapi::api::core::v1::PersistentVolume;

use super::api::PodApi;
use crate::agent::container_runtime::StartError;

/// The directory of claim `name` in `namespace`.
pub async fn claim_dir<A: PodApi>(
    api: &A,
    namespace: &str,
    name: &str,
    claims_dir: &Path,
) -> Result<PathBuf, StartError> {
    let waiting = |why: String| StartError::VolumeNotReady(format!("waiting for volume: {why}"));
    let claim = match api.persistent_volume_claim(namespace, name).await {
        Ok(claim) => claim,
        Err(e) if e.is_not_found() => {
            return Err(waiting(format!(
                "persistentvolumeclaim \"{name}\" not found"
            )));
        }
        Err(e) => {
            return Err(waiting(format!("persistentvolumeclaim \"{name}\": {e}")));
        }
    };
    let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let volume = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty());
    let Some(volume) = volume.filter(|_| bound) else {
        return Err(waiting(format!(
            "persistentvolumeclaim \"{name}\" is not bound"
        )));
    };
    let pv = match api.persistent_volume(volume).await {
        Ok(pv) => pv,
        Err(e) => {
            return Err(waiting(format!(
                "persistentvolume \"{volume}\" of claim \"{name}\": {e}"
            )));
        }
    };
    let dir = volume_dir(&pv, claims_dir).map_err(|why| {
        StartError::CreateContainerConfig(format!("persistentvolume \"{volume}\": {why}"))
    })?;
    if dir.create {
        tokio::fs::create_dir_all(&dir.path).await.map_err(|e| {
            StartError::CreateContainerConfig(format!(
                "creating {} for persistentvolume \"{volume}\": {e}",
                dir.path.display()
            ))
        })?;
    } else if !tokio::fs::metadata(&dir.path)
        .await
        .is_ok_and(|m| m.is_dir())
    {
        return Err(StartError::CreateContainerConfig(format!(
            "persistentvolume \"{volume}\": {} is not a directory",
            dir.path.display()
        )));
    }
    Ok(dir.path)
}

/// Where a volume's data is on this node, and whether to create it.
#[derive(Debug, PartialEq, Eq)]
pub struct VolumeDir {
    pub path: PathBuf,
    pub create: bool,
}

/// Resolves a volume's source to a directory of this node.
pub fn volume_dir(pv: &PersistentVolume, claims_dir: &Path) -> Result<VolumeDir, String> {
    let spec = pv.spec.as_ref();
    let (path, create_absolute) = if let Some(host) = spec.and_then(|s| s.host_path.as_ref()) {
        (
            host.path.as_str(),
            host.type_.as_deref() == Some("DirectoryOrCreate"),
        )
    } else if let Some(local) = spec.and_then(|s| s.local.as_ref()) {
        (local.path.as_str(), false)
    } else {
        return Err("only hostPath and local volumes are supported".into());
    };
    let p = Path::new(path);
    if p.is_absolute() {
        return Ok(VolumeDir {
            path: p.to_path_buf(),
            create: create_absolute,
        });
    }
    let inside = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside {
        return Err(format!(
            "{path:?} must be absolute, or relative without '..'"
        ));
    }
    Ok(VolumeDir {
        path: claims_dir.join(p),
        create: true,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmpod_api::k8s_openapi::api::core::v1::PersistentVolumeClaim;

    use super::*;
    use crate::agent::pods::fake_api::FakeApi;

    fn pv(spec: serde_json::Value) -> PersistentVolume {
        serde_json::from_value(json!({"metadata": {"name": "pv1"}, "spec": spec})).expect("a pv")
    }

    fn claim(status: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
            "spec": {"volumeName": "pv1"},
            "status": status,
        }))
        .expect("a claim")
    }

    #[test]
    fn relative_local_paths_live_in_the_volume_directory() {
        let dir = volume_dir(
            &pv(json!({"local": {"path": "local-path/ns/data-u1"}})),
            Path::new("/data/volumes"),
        );
        assert_eq!(
            dir,
            Ok(VolumeDir {
                path: PathBuf::from("/data/volumes/local-path/ns/data-u1"),
                create: true
            })
        );
        assert!(
            volume_dir(
                &pv(json!({"local": {"path": "../escape"}})),
                Path::new("/d")
            )
            .is_err()
        );
        assert_eq!(
            volume_dir(
                &pv(json!({"hostPath": {"path": "/srv/x"}})),
                Path::new("/d")
            ),
            Ok(VolumeDir {
                path: PathBuf::from("/srv/x"),
                create: false
            })
        );
    }

    #[tokio::test]
    async fn unbound_claim_waits_and_bound_one_gets_its_directory() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let api = FakeApi::default();
        let missing = claim_dir(&api, "ns", "data", tmp.path()).await;
        assert!(
            matches!(&missing, Err(StartError::VolumeNotReady(m)) if m.contains("not found")),
            "{missing:?}"
        );
        api.add_claim(claim(json!({"phase": "Pending"})));
        let pending = claim_dir(&api, "ns", "data", tmp.path()).await;
        assert!(
            matches!(&pending, Err(StartError::VolumeNotReady(m)) if m.contains("not bound")),
            "{pending:?}"
        );
        api.add_claim(claim(json!({"phase": "Bound"})));
        api.add_volume(pv(json!({"local": {"path": "local-path/ns/data-u1"}})));
        let dir = claim_dir(&api, "ns", "data", tmp.path())
            .await
            .expect("a directory");
        assert_eq!(dir, tmp.path().join("local-path/ns/data-u1"));
        assert!(dir.is_dir());
    }
}
