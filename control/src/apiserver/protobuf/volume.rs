//! Conversions of pod volumes. The sources a wasm pod can use (emptyDir,
//! hostPath, configMap, secret, persistentVolumeClaim, downwardAPI,
//! projected) and the simple generic ones (nfs, csi, image) are converted;
//! the cloud and legacy in-tree sources are refused by name.

use k8s_pb::api::core::v1 as core;

use super::container::{local_object_reference, object_field_selector, resource_field_selector};
use super::convert::{Conv, Obj, reject};
use super::meta::label_selector;

pub(super) fn volume(v: core::Volume) -> Conv {
    let core::Volume {
        name,
        volume_source,
    } = v;
    Ok(Obj::new()
        .str("name", name)
        .inline(volume_source, source)?
        .done())
}

fn source(s: core::VolumeSource) -> Conv {
    let core::VolumeSource {
        host_path,
        empty_dir,
        gce_persistent_disk,
        aws_elastic_block_store,
        git_repo,
        secret,
        nfs,
        iscsi,
        glusterfs,
        persistent_volume_claim,
        rbd,
        flex_volume,
        cinder,
        cephfs,
        flocker,
        downward_api,
        fc,
        azure_file,
        config_map,
        vsphere_volume,
        quobyte,
        azure_disk,
        photon_persistent_disk,
        projected,
        portworx_volume,
        scale_io,
        storageos,
        csi,
        ephemeral,
        image,
    } = s;
    reject("gcePersistentDisk", &gce_persistent_disk)?;
    reject("awsElasticBlockStore", &aws_elastic_block_store)?;
    reject("gitRepo", &git_repo)?;
    reject("iscsi", &iscsi)?;
    reject("glusterfs", &glusterfs)?;
    reject("rbd", &rbd)?;
    reject("flexVolume", &flex_volume)?;
    reject("cinder", &cinder)?;
    reject("cephfs", &cephfs)?;
    reject("flocker", &flocker)?;
    reject("fc", &fc)?;
    reject("azureFile", &azure_file)?;
    reject("vsphereVolume", &vsphere_volume)?;
    reject("quobyte", &quobyte)?;
    reject("azureDisk", &azure_disk)?;
    reject("photonPersistentDisk", &photon_persistent_disk)?;
    reject("portworxVolume", &portworx_volume)?;
    reject("scaleIO", &scale_io)?;
    reject("storageos", &storageos)?;
    reject("ephemeral", &ephemeral)?;
    Ok(Obj::new()
        .ptr("hostPath", host_path, |h| {
            let core::HostPathVolumeSource { path, r#type } = h;
            Ok(Obj::new().str("path", path).opt_str("type", r#type).done())
        })?
        .ptr("emptyDir", empty_dir, |e| {
            let core::EmptyDirVolumeSource { medium, size_limit } = e;
            Ok(Obj::new()
                .str("medium", medium)
                .quantity("sizeLimit", size_limit)
                .done())
        })?
        .ptr("secret", secret, |s| {
            let core::SecretVolumeSource {
                secret_name,
                items,
                default_mode,
                optional,
            } = s;
            Ok(Obj::new()
                .str("secretName", secret_name)
                .list("items", items, key_to_path)?
                .opt_int("defaultMode", default_mode)
                .opt_bool("optional", optional)
                .done())
        })?
        .ptr("nfs", nfs, |n| {
            let core::NfsVolumeSource {
                server,
                path,
                read_only,
            } = n;
            Ok(Obj::new()
                .str("server", server)
                .str("path", path)
                .flag("readOnly", read_only)
                .done())
        })?
        .ptr("persistentVolumeClaim", persistent_volume_claim, |p| {
            let core::PersistentVolumeClaimVolumeSource {
                claim_name,
                read_only,
            } = p;
            Ok(Obj::new()
                .str("claimName", claim_name)
                .flag("readOnly", read_only)
                .done())
        })?
        .ptr("downwardAPI", downward_api, |d| {
            let core::DownwardAPIVolumeSource {
                items,
                default_mode,
            } = d;
            Ok(Obj::new()
                .list("items", items, downward_api_file)?
                .opt_int("defaultMode", default_mode)
                .done())
        })?
        .ptr("configMap", config_map, |c| {
            let core::ConfigMapVolumeSource {
                local_object_reference: reference,
                items,
                default_mode,
                optional,
            } = c;
            Ok(Obj::new()
                .inline(reference, local_object_reference)?
                .list("items", items, key_to_path)?
                .opt_int("defaultMode", default_mode)
                .opt_bool("optional", optional)
                .done())
        })?
        .ptr("projected", projected, |p| {
            let core::ProjectedVolumeSource {
                sources,
                default_mode,
            } = p;
            Ok(Obj::new()
                .list("sources", sources, projection)?
                .opt_int("defaultMode", default_mode)
                .done())
        })?
        .ptr("csi", csi, |c| {
            let core::CSIVolumeSource {
                driver,
                read_only,
                fs_type,
                volume_attributes,
                node_publish_secret_ref,
            } = c;
            Ok(Obj::new()
                .str("driver", driver)
                .opt_bool("readOnly", read_only)
                .opt_str("fsType", fs_type)
                .map("volumeAttributes", volume_attributes)
                .ptr(
                    "nodePublishSecretRef",
                    node_publish_secret_ref,
                    local_object_reference,
                )?
                .done())
        })?
        .ptr("image", image, |i| {
            let core::ImageVolumeSource {
                reference,
                pull_policy,
            } = i;
            Ok(Obj::new()
                .str("reference", reference)
                .str("pullPolicy", pull_policy)
                .done())
        })?
        .done())
}

fn key_to_path(k: core::KeyToPath) -> Conv {
    let core::KeyToPath { key, path, mode } = k;
    Ok(Obj::new()
        .str("key", key)
        .str("path", path)
        .opt_int("mode", mode)
        .done())
}

fn downward_api_file(f: core::DownwardAPIVolumeFile) -> Conv {
    let core::DownwardAPIVolumeFile {
        path,
        field_ref,
        resource_field_ref,
        mode,
    } = f;
    Ok(Obj::new()
        .str("path", path)
        .ptr("fieldRef", field_ref, object_field_selector)?
        .ptr(
            "resourceFieldRef",
            resource_field_ref,
            resource_field_selector,
        )?
        .opt_int("mode", mode)
        .done())
}

fn projection(p: core::VolumeProjection) -> Conv {
    let core::VolumeProjection {
        secret,
        downward_api,
        config_map,
        service_account_token,
        cluster_trust_bundle,
        pod_certificate,
    } = p;
    // Newer than the API version this server serves.
    reject("podCertificate", &pod_certificate)?;
    Ok(Obj::new()
        .ptr("secret", secret, |s| {
            let core::SecretProjection {
                local_object_reference: reference,
                items,
                optional,
            } = s;
            Ok(Obj::new()
                .inline(reference, local_object_reference)?
                .list("items", items, key_to_path)?
                .opt_bool("optional", optional)
                .done())
        })?
        .ptr("downwardAPI", downward_api, |d| {
            let core::DownwardAPIProjection { items } = d;
            Ok(Obj::new().list("items", items, downward_api_file)?.done())
        })?
        .ptr("configMap", config_map, |c| {
            let core::ConfigMapProjection {
                local_object_reference: reference,
                items,
                optional,
            } = c;
            Ok(Obj::new()
                .inline(reference, local_object_reference)?
                .list("items", items, key_to_path)?
                .opt_bool("optional", optional)
                .done())
        })?
        .ptr("serviceAccountToken", service_account_token, |t| {
            let core::ServiceAccountTokenProjection {
                audience,
                expiration_seconds,
                path,
            } = t;
            Ok(Obj::new()
                .str("audience", audience)
                .opt_int("expirationSeconds", expiration_seconds)
                .str("path", path)
                .done())
        })?
        .ptr("clusterTrustBundle", cluster_trust_bundle, |b| {
            let core::ClusterTrustBundleProjection {
                name,
                signer_name,
                label_selector: selector,
                optional,
                path,
            } = b;
            Ok(Obj::new()
                .opt_str("name", name)
                .opt_str("signerName", signer_name)
                .ptr("labelSelector", selector, label_selector)?
                .opt_bool("optional", optional)
                .str("path", path)
                .done())
        })?
        .done())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::protobuf::convert::FieldError;
    use crate::apiserver::protobuf::tests::roundtrip;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use serde_json::json;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn named(name: &str, source: core::VolumeSource) -> core::Volume {
        core::Volume {
            name: s(name),
            volume_source: Some(source),
        }
    }

    #[test]
    fn an_empty_dir_stays_an_empty_object() {
        let v = named(
            "scratch",
            core::VolumeSource {
                empty_dir: Some(Default::default()),
                ..Default::default()
            },
        );
        assert_eq!(volume(v), Ok(json!({"name": "scratch", "emptyDir": {}})));
    }

    #[test]
    fn config_map_secret_and_claim_sources_convert_with_their_options() {
        let cm = named(
            "cfg",
            core::VolumeSource {
                config_map: Some(core::ConfigMapVolumeSource {
                    local_object_reference: Some(core::LocalObjectReference {
                        name: s("settings"),
                    }),
                    items: vec![core::KeyToPath {
                        key: s("a"),
                        path: s("a.txt"),
                        mode: Some(0o400),
                    }],
                    default_mode: Some(0o644),
                    optional: Some(true),
                }),
                ..Default::default()
            },
        );
        assert_eq!(
            volume(cm),
            Ok(json!({"name": "cfg", "configMap": {
                "name": "settings", "items": [{"key": "a", "path": "a.txt", "mode": 256}],
                "defaultMode": 420, "optional": true
            }}))
        );
        let secret = named(
            "tls",
            core::VolumeSource {
                secret: Some(core::SecretVolumeSource {
                    secret_name: s("cert"),
                    optional: Some(false),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        assert_eq!(
            volume(secret),
            Ok(json!({"name": "tls", "secret": {"secretName": "cert", "optional": false}}))
        );
        let claim = named(
            "data",
            core::VolumeSource {
                persistent_volume_claim: Some(core::PersistentVolumeClaimVolumeSource {
                    claim_name: s("pvc"),
                    read_only: Some(true),
                }),
                host_path: None,
                ..Default::default()
            },
        );
        assert_eq!(
            volume(claim),
            Ok(
                json!({"name": "data", "persistentVolumeClaim": {"claimName": "pvc", "readOnly": true}})
            )
        );
    }

    #[test]
    fn host_path_and_sized_empty_dir_keep_their_fields() {
        let v = named(
            "h",
            core::VolumeSource {
                host_path: Some(core::HostPathVolumeSource {
                    path: s("/data"),
                    r#type: s("Directory"),
                }),
                ..Default::default()
            },
        );
        assert_eq!(
            volume(v),
            Ok(json!({"name": "h", "hostPath": {"path": "/data", "type": "Directory"}}))
        );
        let v = named(
            "m",
            core::VolumeSource {
                empty_dir: Some(core::EmptyDirVolumeSource {
                    medium: s("Memory"),
                    size_limit: Some(Quantity { string: s("64Mi") }),
                }),
                ..Default::default()
            },
        );
        assert_eq!(
            volume(v),
            Ok(json!({"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}))
        );
    }

    #[test]
    fn projected_and_downward_api_sources_convert() {
        let v = named(
            "p",
            core::VolumeSource {
                projected: Some(core::ProjectedVolumeSource {
                    sources: vec![
                        core::VolumeProjection {
                            service_account_token: Some(core::ServiceAccountTokenProjection {
                                audience: s("api"),
                                expiration_seconds: Some(3600),
                                path: s("token"),
                            }),
                            ..Default::default()
                        },
                        core::VolumeProjection {
                            downward_api: Some(core::DownwardAPIProjection {
                                items: vec![core::DownwardAPIVolumeFile {
                                    path: s("labels"),
                                    field_ref: Some(core::ObjectFieldSelector {
                                        api_version: s("v1"),
                                        field_path: s("metadata.labels"),
                                    }),
                                    ..Default::default()
                                }],
                            }),
                            ..Default::default()
                        },
                    ],
                    default_mode: Some(0o444),
                }),
                ..Default::default()
            },
        );
        assert_eq!(
            volume(v),
            Ok(json!({"name": "p", "projected": {
                "sources": [
                    {"serviceAccountToken": {"audience": "api", "expirationSeconds": 3600, "path": "token"}},
                    {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}}]}}
                ],
                "defaultMode": 292
            }}))
        );
    }

    #[test]
    fn the_generic_sources_and_remaining_projections_convert_and_round_trip() {
        let reference = || Some(core::LocalObjectReference { name: s("ref") });
        let items = || {
            vec![core::KeyToPath {
                key: s("k"),
                path: s("p"),
                mode: None,
            }]
        };
        let volumes = vec![
            named(
                "nfs",
                core::VolumeSource {
                    nfs: Some(core::NfsVolumeSource {
                        server: s("nas"),
                        path: s("/export"),
                        read_only: Some(true),
                    }),
                    ..Default::default()
                },
            ),
            named(
                "csi",
                core::VolumeSource {
                    csi: Some(core::CSIVolumeSource {
                        driver: s("csi.example.com"),
                        read_only: Some(false),
                        fs_type: s("ext4"),
                        volume_attributes: [("size".to_string(), "1Gi".to_string())].into(),
                        node_publish_secret_ref: reference(),
                    }),
                    ..Default::default()
                },
            ),
            named(
                "img",
                core::VolumeSource {
                    image: Some(core::ImageVolumeSource {
                        reference: s("data:1"),
                        pull_policy: s("Always"),
                    }),
                    ..Default::default()
                },
            ),
            named(
                "dapi",
                core::VolumeSource {
                    downward_api: Some(core::DownwardAPIVolumeSource {
                        items: vec![core::DownwardAPIVolumeFile {
                            path: s("mem"),
                            field_ref: None,
                            resource_field_ref: Some(core::ResourceFieldSelector {
                                container_name: s("app"),
                                resource: s("limits.memory"),
                                divisor: Some(Quantity { string: s("1Mi") }),
                            }),
                            mode: Some(0o400),
                        }],
                        default_mode: Some(0o444),
                    }),
                    ..Default::default()
                },
            ),
            named(
                "proj",
                core::VolumeSource {
                    projected: Some(core::ProjectedVolumeSource {
                        sources: vec![
                            core::VolumeProjection {
                                secret: Some(core::SecretProjection {
                                    local_object_reference: reference(),
                                    items: items(),
                                    optional: Some(true),
                                }),
                                ..Default::default()
                            },
                            core::VolumeProjection {
                                config_map: Some(core::ConfigMapProjection {
                                    local_object_reference: reference(),
                                    items: items(),
                                    optional: Some(false),
                                }),
                                ..Default::default()
                            },
                            core::VolumeProjection {
                                cluster_trust_bundle: Some(core::ClusterTrustBundleProjection {
                                    name: None,
                                    signer_name: s("example.com/signer"),
                                    label_selector: Some(Default::default()),
                                    optional: Some(true),
                                    path: s("ca.pem"),
                                }),
                                ..Default::default()
                            },
                        ],
                        default_mode: None,
                    }),
                    ..Default::default()
                },
            ),
        ];
        let converted = volumes.into_iter().map(volume).collect::<Conv<Vec<_>>>();
        let expected = json!([
            {"name": "nfs", "nfs": {"server": "nas", "path": "/export", "readOnly": true}},
            {"name": "csi", "csi": {"driver": "csi.example.com", "readOnly": false, "fsType": "ext4",
                                    "volumeAttributes": {"size": "1Gi"}, "nodePublishSecretRef": {"name": "ref"}}},
            {"name": "img", "image": {"reference": "data:1", "pullPolicy": "Always"}},
            {"name": "dapi", "downwardAPI": {"items": [{"path": "mem", "mode": 256,
                "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}], "defaultMode": 292}},
            {"name": "proj", "projected": {"sources": [
                {"secret": {"name": "ref", "items": [{"key": "k", "path": "p"}], "optional": true}},
                {"configMap": {"name": "ref", "items": [{"key": "k", "path": "p"}], "optional": false}},
                {"clusterTrustBundle": {"signerName": "example.com/signer", "labelSelector": {}, "optional": true, "path": "ca.pem"}}
            ]}}
        ]);
        assert_eq!(converted.map(serde_json::Value::from), Ok(expected.clone()));
        assert_eq!(
            roundtrip::<Vec<k8s_openapi::api::core::v1::Volume>>(&expected),
            expected
        );
    }

    #[test]
    fn an_in_tree_cloud_source_is_refused_by_name() {
        let v = named(
            "disk",
            core::VolumeSource {
                gce_persistent_disk: Some(Default::default()),
                ..Default::default()
            },
        );
        assert_eq!(volume(v), Err(FieldError::unsupported("gcePersistentDisk")));
    }
}
