//! Rows of the storage kinds: PersistentVolume and PersistentVolumeClaim,
//! with kubectl's short access-mode notation and storage class lookup, and
//! StorageClass, whose default is marked `(default)` after its name.

use jiff::Timestamp;
use serde_json::Value;

use super::Column;
use super::format::{list, since, text, text_or};

pub(super) const PERSISTENT_VOLUME: &[Column] = &[
    Column::name(),
    Column::new(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity.",
    ),
    Column::new(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted.",
    ),
    Column::new(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
    ),
    Column::new(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim.",
    ),
    Column::new(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
    ),
    Column::new("StorageClass", "string", "StorageClass of the pv"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    Column::new(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    Column::age(),
    Column::wide(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
    ),
];

pub(super) const PERSISTENT_VOLUME_CLAIM: &[Column] = &[
    Column::name(),
    Column::new(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    Column::new(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    Column::new(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    Column::new(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has.",
    ),
    Column::new("StorageClass", "string", "StorageClass of the pvc"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    Column::age(),
    Column::wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    ),
];

pub(super) const STORAGE_CLASS: &[Column] = &[
    Column::name(),
    Column::new(
        "Provisioner",
        "string",
        "provisioner indicates the type of the provisioner.",
    ),
    Column::new(
        "ReclaimPolicy",
        "string",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.",
    ),
    Column::new(
        "VolumeBindingMode",
        "string",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
    ),
    Column::new(
        "AllowVolumeExpansion",
        "string",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    Column::age(),
];

pub(super) fn storage_class_row(class: &Value, now: Timestamp) -> Vec<Value> {
    let name = text(class, "/metadata/name");
    let default = [
        "storageclass.kubernetes.io",
        "storageclass.beta.kubernetes.io",
    ]
    .iter()
    .any(|prefix| {
        class
            .pointer(&format!("/metadata/annotations/{prefix}~1is-default-class"))
            .and_then(Value::as_str)
            == Some("true")
    });
    let name = if default {
        format!("{name} (default)")
    } else {
        name.to_string()
    };
    vec![
        name.into(),
        text(class, "/provisioner").into(),
        text_or(class, "/reclaimPolicy", "Delete").into(),
        text_or(class, "/volumeBindingMode", "Immediate").into(),
        class
            .pointer("/allowVolumeExpansion")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .into(),
        since(class, "/metadata/creationTimestamp", now).into(),
    ]
}

/// `RWO,ROX,RWX,RWOP`: the access modes present, in that fixed order.
fn access_modes(modes: &[Value]) -> String {
    let present: Vec<&str> = modes.iter().filter_map(Value::as_str).collect();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| present.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class of a PV or PVC: the beta annotation wins over the field.
fn storage_class(obj: &Value) -> &str {
    match obj
        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .and_then(Value::as_str)
    {
        Some(class) => class,
        None => text(obj, "/spec/storageClassName"),
    }
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
}

pub(super) fn persistent_volume(pv: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match pv.pointer("/spec/claimRef").filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", text(c, "/namespace"), text(c, "/name")),
        None => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        text(pv, "/status/phase")
    };
    vec![
        text(pv, "/metadata/name").into(),
        text_or(pv, "/spec/capacity/storage", "0").into(),
        access_modes(list(pv, "/spec/accessModes")).into(),
        text(pv, "/spec/persistentVolumeReclaimPolicy").into(),
        phase.into(),
        claim.into(),
        storage_class(pv).into(),
        text_or(pv, "/spec/volumeAttributesClassName", "<unset>").into(),
        text(pv, "/status/reason").into(),
        since(pv, "/metadata/creationTimestamp", now).into(),
        text_or(pv, "/spec/volumeMode", "<unset>").into(),
    ]
}

pub(super) fn persistent_volume_claim(pvc: &Value, now: Timestamp) -> Vec<Value> {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        text(pvc, "/status/phase")
    };
    let volume = text(pvc, "/spec/volumeName");
    // Capacity and modes are those of the bound volume, so an unbound claim
    // shows neither.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            text_or(pvc, "/status/capacity/storage", "0").to_string(),
            access_modes(list(pvc, "/status/accessModes")),
        )
    };
    vec![
        text(pvc, "/metadata/name").into(),
        phase.into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        storage_class(pvc).into(),
        text_or(pvc, "/spec/volumeAttributesClassName", "<unset>").into(),
        since(pvc, "/metadata/creationTimestamp", now).into(),
        text_or(pvc, "/spec/volumeMode", "<unset>").into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap_or_default()
    }

    #[test]
    fn default_class_is_marked_after_its_name() {
        let class = json!({
            "metadata": {"name": "local-path",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "wasmpod.io/local-path",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        });
        let cells = storage_class_row(&class, now());
        assert_eq!(cells.len(), STORAGE_CLASS.len());
        assert_eq!(cells[0], "local-path (default)");
        assert_eq!(cells[3], "WaitForFirstConsumer");
        assert_eq!(cells[4], false);
    }

    #[test]
    fn volumes_show_binding_and_modes() {
        let pv = json!({
            "metadata": {"name": "pv1", "annotations": {"volume.beta.kubernetes.io/storage-class": "slow"}},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "default", "name": "data"},
                "storageClassName": "fast"},
            "status": {"phase": "Bound"},
        });
        let cells = persistent_volume(&pv, now());
        assert_eq!(cells.len(), PERSISTENT_VOLUME.len());
        assert_eq!(
            cells[1..8],
            [
                json!("1Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!("slow"),
                json!("<unset>")
            ]
        );
        let pending = json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "fast"},
            "status": {"phase": "Pending"}});
        let cells = persistent_volume_claim(&pending, now());
        assert_eq!(cells.len(), PERSISTENT_VOLUME_CLAIM.len());
        assert_eq!(
            cells[1..6],
            [
                json!("Pending"),
                json!(""),
                json!(""),
                json!(""),
                json!("fast")
            ]
        );
    }
}
