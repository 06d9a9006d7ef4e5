//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

use json_patch::{Patch, PatchOperation};
use serde_json::Value;

use super::PatchError;

/// The most operations one JSON patch may carry, as in Kubernetes.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Applies an RFC 7386 merge patch: objects merge key by key, `null`
/// removes a key, anything else (lists included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 patch (a list of operations) atomically: when an
/// operation fails, `target` is left as it was.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Array(operations) = patch else {
        return Err(PatchError::BadRequest(
            "json patch must be a list of operations".to_string(),
        ));
    };
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: operations.len(),
        });
    }
    let Patch(operations) = serde_json::from_value::<Patch>(patch.clone())
        .map_err(|e| PatchError::BadRequest(format!("invalid json patch: {e}")))?;
    json_patch::patch(target, &operations).map_err(|e| PatchError::OperationFailed {
        index: e.operation,
        op: operations
            .get(e.operation)
            .map(op_name)
            .unwrap_or("unknown"),
        path: e.path.to_string(),
        reason: e.kind.to_string(),
    })
}

fn op_name(op: &PatchOperation) -> &'static str {
    match op {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_merges_objects_and_replaces_lists() {
        let mut doc =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"args": ["x", "y"]}});
        merge_patch(
            &mut doc,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"args": ["z"]}}),
        );
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"args": ["z"]}})
        );
    }

    #[test]
    fn json_patch_applies_operations_in_order() {
        let mut doc = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": "a"}]}}}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/spec/replicas", "value": 1},
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "b"},
                {"op": "add", "path": "/metadata", "value": {"labels": {"x": "y"}}},
            ]),
        )
        .expect("applies");
        assert_eq!(doc["spec"]["replicas"], 3);
        assert_eq!(
            doc["spec"]["template"]["spec"]["containers"][0]["image"],
            "b"
        );
        assert_eq!(doc["metadata"]["labels"]["x"], "y");
    }

    #[test]
    fn failed_operation_is_named_and_nothing_changes() {
        let original = json!({"spec": {"replicas": 1}});
        let mut doc = original.clone();
        let err = json_patch(
            &mut doc,
            &json!([
                {"op": "replace", "path": "/spec/replicas", "value": 2},
                {"op": "remove", "path": "/spec/missing"},
            ]),
        )
        .expect_err("second operation fails");
        assert_eq!(doc, original);
        assert_eq!(
            err.to_string(),
            "json patch remove operation 1 failed at path \"/spec/missing\": path is invalid"
        );
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn failed_test_operation_is_unprocessable() {
        let mut doc = json!({"a": 1});
        let err = json_patch(&mut doc, &json!([{"op": "test", "path": "/a", "value": 2}]))
            .expect_err("test fails");
        assert!(
            matches!(
                err,
                PatchError::OperationFailed {
                    op: "test",
                    index: 0,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn malformed_patches_are_bad_requests() {
        let mut doc = json!({});
        assert_eq!(
            json_patch(&mut doc, &json!({"op": "add"})).map_err(|e| e.status_code()),
            Err(400)
        );
        assert_eq!(
            json_patch(&mut doc, &json!([{"op": "frobnicate", "path": "/a"}]))
                .map_err(|e| e.status_code()),
            Err(400)
        );
        let too_many = Value::Array(vec![
            json!({"op": "test", "path": "", "value": {}});
            MAX_JSON_PATCH_OPERATIONS + 1
        ]);
        assert_eq!(
            json_patch(&mut doc, &too_many).map_err(|e| e.status_code()),
            Err(413)
        );
    }
}
