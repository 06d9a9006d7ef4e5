//! Conversions of the apimachinery meta/v1 messages every object carries:
//! ObjectMeta with its owner references, and LabelSelector.

use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;

use super::convert::{Conv, Obj, reject_list};

pub(super) fn object_meta(m: meta::ObjectMeta) -> Conv {
    let meta::ObjectMeta {
        name,
        generate_name,
        namespace,
        self_link,
        uid,
        resource_version,
        generation,
        creation_timestamp,
        deletion_timestamp,
        deletion_grace_period_seconds,
        labels,
        annotations,
        owner_references,
        finalizers,
        managed_fields,
    } = m;
    // Field ownership is recorded by the server, not taken from clients.
    reject_list("managedFields", &managed_fields)?;
    Ok(Obj::new()
        .str("name", name)
        .str("generateName", generate_name)
        .str("namespace", namespace)
        .str("selfLink", self_link)
        .str("uid", uid)
        .str("resourceVersion", resource_version)
        .int("generation", generation)
        .time("creationTimestamp", creation_timestamp)?
        .time("deletionTimestamp", deletion_timestamp)?
        .opt_int("deletionGracePeriodSeconds", deletion_grace_period_seconds)
        .map("labels", labels)
        .map("annotations", annotations)
        .list("ownerReferences", owner_references, owner_reference)?
        .strs("finalizers", finalizers)
        .done())
}

fn owner_reference(r: meta::OwnerReference) -> Conv {
    let meta::OwnerReference {
        api_version,
        kind,
        name,
        uid,
        controller,
        block_owner_deletion,
    } = r;
    Ok(Obj::new()
        .str("apiVersion", api_version)
        .str("kind", kind)
        .str("name", name)
        .str("uid", uid)
        .opt_bool("controller", controller)
        .opt_bool("blockOwnerDeletion", block_owner_deletion)
        .done())
}

pub(super) fn label_selector(s: meta::LabelSelector) -> Conv {
    let meta::LabelSelector {
        match_labels,
        match_expressions,
    } = s;
    Obj::new()
        .map("matchLabels", match_labels)
        .list("matchExpressions", match_expressions, |r| {
            let meta::LabelSelectorRequirement {
                key,
                operator,
                values,
            } = r;
            Ok(Obj::new()
                .str("key", key)
                .str("operator", operator)
                .strs("values", values)
                .done())
        })
        .map(Obj::done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::protobuf::convert::FieldError;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn object_meta_converts_every_client_settable_field() {
        let m = meta::ObjectMeta {
            name: s("web"),
            generate_name: s("web-"),
            namespace: s("prod"),
            self_link: s(""),
            uid: s("1234"),
            resource_version: s("17"),
            generation: Some(3),
            creation_timestamp: Some(meta::Time {
                seconds: Some(0),
                nanos: Some(0),
            }),
            deletion_timestamp: Some(meta::Time {
                seconds: Some(86_400),
                nanos: None,
            }),
            deletion_grace_period_seconds: Some(0),
            labels: BTreeMap::from([
                ("app".into(), "web".into()),
                ("empty".into(), String::new()),
            ]),
            annotations: BTreeMap::from([("note".into(), "x".into())]),
            owner_references: vec![meta::OwnerReference {
                api_version: s("apps/v1"),
                kind: s("ReplicaSet"),
                name: s("web-1"),
                uid: s("abcd"),
                controller: Some(true),
                block_owner_deletion: Some(false),
            }],
            finalizers: vec!["example.com/keep".into()],
            managed_fields: vec![],
        };
        assert_eq!(
            object_meta(m),
            Ok(json!({
                "name": "web",
                "generateName": "web-",
                "namespace": "prod",
                "uid": "1234",
                "resourceVersion": "17",
                "generation": 3,
                "creationTimestamp": "1970-01-01T00:00:00Z",
                "deletionTimestamp": "1970-01-02T00:00:00Z",
                "deletionGracePeriodSeconds": 0,
                "labels": {"app": "web", "empty": ""},
                "annotations": {"note": "x"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "abcd",
                    "controller": true, "blockOwnerDeletion": false
                }],
                "finalizers": ["example.com/keep"]
            }))
        );
    }

    #[test]
    fn object_meta_as_go_encodes_an_unnamed_object_is_nearly_empty() {
        // Go writes every non-pointer field, zero or not.
        let m = meta::ObjectMeta {
            name: s("x"),
            generate_name: s(""),
            namespace: s(""),
            self_link: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        };
        assert_eq!(object_meta(m), Ok(json!({"name": "x"})));
    }

    #[test]
    fn managed_fields_are_refused_by_name() {
        let m = meta::ObjectMeta {
            managed_fields: vec![meta::ManagedFieldsEntry::default()],
            ..Default::default()
        };
        assert_eq!(
            object_meta(m),
            Err(FieldError::unsupported("managedFields"))
        );
    }

    #[test]
    fn label_selector_keeps_match_labels_and_expressions() {
        let sel = meta::LabelSelector {
            match_labels: BTreeMap::from([("app".into(), "web".into())]),
            match_expressions: vec![meta::LabelSelectorRequirement {
                key: s("tier"),
                operator: s("In"),
                values: vec!["a".into(), "b".into()],
            }],
        };
        assert_eq!(
            label_selector(sel),
            Ok(json!({
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
            }))
        );
    }
}
