//! Strategic merge patch, the patch type `kubectl apply`, `edit` and
//! `patch` send for built-in kinds: like a JSON merge patch, except that
//! lists the kind's schema marks `merge` are merged item by item (by a
//! merge key, or as a set for scalars), and the patch may carry directives
//! (`$patch`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`,
//! `$retainKeys`). The semantics follow Kubernetes' `strategicpatch`
//! package; the patch metadata comes from [`crate::schema`].

mod order;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use self::order::{Identity, check_order_list, no_merge_key, normalize, partition};
use super::PatchError;
use crate::schema;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

const BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// Applies `patch` to `target`, an object of the kind whose schema
/// component is `schema_name` (e.g. `io.k8s.api.core.v1.Pod`).
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    schema_name: &str,
) -> Result<Value, PatchError> {
    let root = schema::component(schema_name)
        .ok_or_else(|| PatchError::Unsupported(schema_name.to_string()))?;
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(
            "strategic merge patch must be a JSON object".to_string(),
        ));
    };
    let original = match target {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::Invalid(format!(
                "cannot patch a non-object value: {other}"
            )));
        }
    };
    merge_map(
        original,
        patch.clone(),
        Meta {
            schema: Some(schema::resolve(root)),
        },
    )
    .map(Value::Object)
}

/// The schema of the object being merged, if the kind's schema reaches it.
/// Without one, maps merge and lists are replaced.
#[derive(Debug, Clone, Copy)]
struct Meta {
    schema: Option<&'static Value>,
}

/// How the list under one key merges.
struct ListMeta {
    items: Meta,
    merge: bool,
    merge_key: Option<&'static str>,
}

impl Meta {
    /// The (unresolved) schema of `key`: a declared property, or the value
    /// schema of a map type.
    fn property(self, key: &str) -> Option<&'static Value> {
        let schema = self.schema?;
        if let Some(p) = schema.get("properties").and_then(|p| p.get(key)) {
            return Some(p);
        }
        schema.get("additionalProperties").filter(|a| a.is_object())
    }

    fn strategies(self, key: &str) -> (Option<&'static str>, Option<&'static str>) {
        match self.property(key) {
            Some(p) => match schema::patch_meta(p) {
                (None, None) => schema::patch_meta(schema::resolve(p)),
                meta => meta,
            },
            None => (None, None),
        }
    }

    /// The schema of the object under `key`, and whether it is replaced
    /// rather than merged.
    fn map_field(self, key: &str) -> (Meta, bool) {
        let replace = has_strategy(self.strategies(key).0, "replace");
        (
            Meta {
                schema: self.property(key).map(schema::resolve),
            },
            replace,
        )
    }

    fn list_field(self, key: &str) -> ListMeta {
        let (strategy, merge_key) = self.strategies(key);
        let items = self
            .property(key)
            .map(schema::resolve)
            .and_then(|p| p.get("items"))
            .map(schema::resolve);
        ListMeta {
            items: Meta { schema: items },
            merge: has_strategy(strategy, "merge"),
            merge_key,
        }
    }
}

/// `merge,retainKeys` holds both `merge` and `retainKeys`.
fn has_strategy(strategies: Option<&str>, wanted: &str) -> bool {
    strategies.is_some_and(|s| s.split(',').any(|s| s.trim() == wanted))
}

/// JSON equality where `1` and `1.0` are the same number, as they are to
/// the Go decoder that reads every number as a float.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    meta: Meta,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.remove(DIRECTIVE) {
        match directive.as_str() {
            // The patch is the whole new map; its own directives still apply.
            Some("replace") => return merge_map(Map::new(), patch, meta),
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {}
            _ => {
                return Err(PatchError::Invalid(format!(
                    "unknown patch type: {directive} in map: {}",
                    Value::Object(patch)
                )));
            }
        }
    }
    apply_retain_keys(&mut original, &mut patch)?;
    apply_element_orders(&mut original, &mut patch, meta)?;

    for (key, value) in patch {
        let (key, delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(field) => (field.to_string(), true),
            None => (key, false),
        };
        if value.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(current) = original.remove(&key) else {
            if !delete_list {
                let fresh = merge_value(None, value, meta, &key, false)?;
                original.insert(key, fresh);
            }
            continue;
        };
        let merged = match (current, value) {
            (current @ (Value::Object(_) | Value::Array(_)), value)
                if same_kind(&current, &value) =>
            {
                merge_value(Some(current), value, meta, &key, delete_list)?
            }
            (current, _) if delete_list => current,
            (_, value) => merge_value(None, value, meta, &key, false)?,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    )
}

/// Merges the patch value of `key` into the current one (absent: into
/// nothing, which still interprets the patch's directives).
fn merge_value(
    current: Option<Value>,
    value: Value,
    meta: Meta,
    key: &str,
    delete_list: bool,
) -> Result<Value, PatchError> {
    match value {
        Value::Object(patch) => {
            let (child, replace) = meta.map_field(key);
            let current = match current {
                Some(Value::Object(m)) if !replace => m,
                _ => Map::new(),
            };
            merge_map(current, patch, child).map(Value::Object)
        }
        Value::Array(patch) => {
            let current = match current {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            merge_list(current, patch, &meta.list_field(key), key, delete_list).map(Value::Array)
        }
        scalar => Ok(scalar),
    }
}

/// Removes the keys `$retainKeys` does not list (Kubernetes uses it for
/// union types such as volume sources and deployment strategies).
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRequest(BAD_RETAIN_KEYS.to_string()));
    };
    let kept = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    let unlisted = patch.iter().any(|(k, v)| {
        !(v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
            || kept(k))
    });
    if unlisted {
        return Err(PatchError::BadRequest(BAD_RETAIN_KEYS.to_string()));
    }
    original.retain(|k, _| kept(k));
    Ok(())
}

/// Merges each list that has a `$setElementOrder/<list>` directive and
/// puts its items in the directive's order; the merged list is then taken
/// out of the patch.
fn apply_element_orders(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    meta: Meta,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in keys {
        let Some(order) = patch.remove(&directive) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(PatchError::BadRequest(BAD_SET_ELEMENT_ORDER.to_string()));
        };
        let field = &directive[SET_ELEMENT_ORDER.len()..];
        if field.is_empty() {
            return Err(PatchError::BadRequest(BAD_SET_ELEMENT_ORDER.to_string()));
        }
        let current = match original.get(field) {
            None => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(other) => {
                return Err(PatchError::Invalid(format!(
                    "expected a list at {field}, but received {other}"
                )));
            }
        };
        let patch_list = match patch.get(field) {
            None => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(other) => {
                return Err(PatchError::Invalid(format!(
                    "expected a list at {field}, but received {other}"
                )));
            }
        };
        let list = meta.list_field(field);
        let identity = list.merge_key.map_or(Identity::Scalar, Identity::Key);
        check_order_list(patch_list.as_deref().unwrap_or_default(), &order, identity)?;
        let server_order = current.clone().unwrap_or_default();
        let merged = match (current, patch_list) {
            (None, None) => continue,
            (Some(current), None) => current,
            (current, Some(patch_list)) => {
                merge_list(current.unwrap_or_default(), patch_list, &list, field, false)?
            }
        };
        let (patch_items, server_only) = partition(merged, &order, identity)?;
        let ordered = normalize(patch_items, server_only, &order, &server_order, identity)?;
        original.insert(field.to_string(), Value::Array(ordered));
        patch.remove(field);
    }
    Ok(())
}

/// Merges a patch list into the current one by the list's strategy.
fn merge_list(
    current: Vec<Value>,
    patch: Vec<Value>,
    list: &ListMeta,
    field: &str,
    delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if !(list.merge || delete_list) {
        // Replaced whole; directive items have no meaning in such a list.
        return Ok(patch
            .into_iter()
            .filter(|item| item.get(DIRECTIVE).is_none())
            .collect());
    }
    if current.is_empty() && patch.is_empty() {
        return Ok(current);
    }
    if !element_kind_is_object(&current, &patch)? {
        if delete_list {
            return Ok(current
                .into_iter()
                .filter(|c| !patch.iter().any(|p| values_equal(c, p)))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(current.len() + patch.len());
        for item in current.iter().chain(patch.iter()) {
            if !merged.iter().any(|m| values_equal(m, item)) {
                merged.push(item.clone());
            }
        }
        let (patch_items, server_only) = partition(merged, &patch, Identity::Scalar)?;
        return normalize(patch_items, server_only, &patch, &current, Identity::Scalar);
    }
    let Some(key) = list.merge_key else {
        return Err(PatchError::Invalid(format!(
            "cannot merge lists without merge key for {field}"
        )));
    };
    let (current, patch) = apply_list_directives(current, patch, key)?;
    let server_order: Vec<Value> = current.clone();
    let mut merged = current;
    for item in &patch {
        let Value::Object(item) = item else { continue };
        let Some(id) = item.get(key) else {
            return Err(no_merge_key(item, key));
        };
        let found = merged
            .iter()
            .position(|m| m.get(key).is_some_and(|v| values_equal(v, id)));
        match found {
            Some(i) => {
                let existing = match std::mem::take(&mut merged[i]) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                merged[i] = Value::Object(merge_map(existing, item.clone(), list.items)?);
            }
            None => merged.push(Value::Object(merge_map(
                Map::new(),
                item.clone(),
                list.items,
            )?)),
        }
    }
    let identity = Identity::Key(key);
    let (patch_items, server_only) = partition(merged, &patch, identity)?;
    normalize(patch_items, server_only, &patch, &server_order, identity)
}

/// Whether the items of both lists are objects (`false`: scalars). Mixed
/// lists and lists of lists cannot be merged.
fn element_kind_is_object(current: &[Value], patch: &[Value]) -> Result<bool, PatchError> {
    let mut kind = None;
    for item in current.iter().chain(patch.iter()) {
        let this = std::mem::discriminant(item);
        if item.is_array() {
            return Err(PatchError::Invalid(
                "lists of lists are not supported".to_string(),
            ));
        }
        match kind {
            None => kind = Some((this, item.is_object())),
            Some((k, _)) if k != this => {
                return Err(PatchError::Invalid(format!(
                    "list element types are not identical: {} and {}",
                    Value::Array(current.to_vec()),
                    Value::Array(patch.to_vec())
                )));
            }
            Some(_) => {}
        }
    }
    Ok(kind.is_some_and(|(_, object)| object))
}

/// Applies `$patch` items of a list of objects: `delete` removes the items
/// with that key, `replace` makes the remaining patch items the whole list,
/// and `merge` is the default. Returns the current list and the patch items
/// still to merge.
fn apply_list_directives(
    mut current: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut items = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(mut map) = item else {
            items.push(item);
            continue;
        };
        let Some(directive) = map.remove(DIRECTIVE) else {
            items.push(Value::Object(map));
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(id) = map.get(key) else {
                    map.insert(DIRECTIVE.to_string(), directive);
                    return Err(no_merge_key(&map, key));
                };
                current.retain(|c| !c.get(key).is_some_and(|v| values_equal(v, id)));
            }
            Some("replace") => replace = true,
            // An item marked `merge` merges like any other; a bare marker says nothing.
            Some("merge") if map.contains_key(key) => items.push(Value::Object(map)),
            Some("merge") => {}
            _ => {
                map.insert(DIRECTIVE.to_string(), directive.clone());
                return Err(PatchError::Invalid(format!(
                    "unknown patch type: {directive} in map: {}",
                    Value::Object(map)
                )));
            }
        }
    }
    if replace {
        Ok((Vec::new(), items))
    } else {
        Ok((current, items))
    }
}
