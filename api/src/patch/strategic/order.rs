//! List order after a strategic merge: items named by the patch (or its
//! `$setElementOrder` list) keep the patch's order, items only the server
//! had keep theirs, and the two are interleaved by the server's order, as
//! Kubernetes' `normalizeElementOrder` does.

use serde_json::{Map, Value};

use super::{PatchError, values_equal};

/// Identifies list items: by the merge key for lists of objects, by the
/// item itself for lists of scalars.
#[derive(Debug, Clone, Copy)]
pub(super) enum Identity<'k> {
    Key(&'k str),
    Scalar,
}

impl Identity<'_> {
    fn of<'v>(&self, item: &'v Value) -> Option<&'v Value> {
        match self {
            Identity::Key(k) => item.get(*k),
            Identity::Scalar => Some(item),
        }
    }

    pub(super) fn same(&self, a: &Value, b: &Value) -> bool {
        match (self.of(a), self.of(b)) {
            (Some(x), Some(y)) => values_equal(x, y),
            _ => false,
        }
    }

    fn index_in(&self, list: &[Value], item: &Value) -> Option<usize> {
        list.iter().position(|v| self.same(v, item))
    }

    /// Every item of these lists must be an object carrying the merge key.
    fn require_keys(&self, lists: &[&[Value]]) -> Result<(), PatchError> {
        if let Identity::Key(key) = self {
            for item in lists.iter().flat_map(|l| l.iter()) {
                require_key(item, key)?;
            }
        }
        Ok(())
    }
}

/// The object `item`, if it carries `key`; Kubernetes' wording otherwise.
pub(super) fn require_key<'v>(
    item: &'v Value,
    key: &str,
) -> Result<&'v Map<String, Value>, PatchError> {
    match item {
        Value::Object(m) if m.contains_key(key) => Ok(m),
        Value::Object(m) => Err(no_merge_key(m, key)),
        other => Err(PatchError::Invalid(format!(
            "expected a map, but received {other}"
        ))),
    }
}

pub(super) fn no_merge_key(item: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::Invalid(format!(
        "map: {} does not contain declared merge key: {key}",
        Value::Object(item.clone())
    ))
}

fn is_delete_directive(item: &Value) -> bool {
    item.get("$patch").and_then(Value::as_str) == Some("delete")
}

/// Splits `merged` into the items present in `by` and the rest.
pub(super) fn partition(
    merged: Vec<Value>,
    by: &[Value],
    identity: Identity<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    identity.require_keys(&[&merged])?;
    Ok(merged
        .into_iter()
        .partition(|item| identity.index_in(by, item).is_some()))
}

/// Orders `patch_items` by `patch_order` and `server_only` by
/// `server_order`, then interleaves them.
pub(super) fn normalize(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    identity: Identity<'_>,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = sort_by(patch_items, patch_order, identity)?;
    let server_only = sort_by(server_only, server_order, identity)?;
    Ok(interleave(server_only, patch_items, server_order, identity))
}

/// Stable sort by position in `order`; unknown items go last and delete
/// directives after them.
fn sort_by(
    items: Vec<Value>,
    order: &[Value],
    identity: Identity<'_>,
) -> Result<Vec<Value>, PatchError> {
    identity.require_keys(&[&items, order])?;
    let (mut keep, deletes): (Vec<Value>, Vec<Value>) = match identity {
        Identity::Key(_) => items.into_iter().partition(|i| !is_delete_directive(i)),
        Identity::Scalar => (items, Vec::new()),
    };
    keep.sort_by_key(|item| identity.index_in(order, item).unwrap_or(usize::MAX));
    keep.extend(deletes);
    Ok(keep)
}

/// Merges two sorted lists, taking a server-only item first only when the
/// server's order puts it before the next patch item.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    identity: Identity<'_>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => return out,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (identity.index_in(server_order, l), identity.index_in(server_order, r)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
}

/// Checks that the patch list names its items in the same relative order
/// as `$setElementOrder` (deletions aside).
pub(super) fn check_order_list(
    patch_list: &[Value],
    order: &[Value],
    identity: Identity<'_>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = match identity {
        Identity::Key(_) => {
            if let Some(bad) = patch_list.iter().find(|i| !i.is_object()) {
                return Err(PatchError::Invalid(format!(
                    "expected a map, but received {bad}"
                )));
            }
            patch_list
                .iter()
                .filter(|i| !is_delete_directive(i))
                .collect()
        }
        Identity::Scalar => patch_list.iter().collect(),
    };
    let (mut p, mut s) = (0, 0);
    while p < items.len() && s < order.len() {
        if items[p].get("$patch").is_some() {
            p += 1;
            continue;
        }
        if let Identity::Key(key) = identity {
            require_key(items[p], key)?;
            require_key(&order[s], key)?;
        }
        if identity.same(items[p], &order[s]) {
            p += 1;
        }
        s += 1;
    }
    if p < items.len() {
        return Err(PatchError::BadRequest(format!(
            "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
            Value::Array(patch_list.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names(list: &[Value]) -> Vec<&str> {
        list.iter().filter_map(|v| v["name"].as_str()).collect()
    }

    #[test]
    fn patch_items_interleave_with_server_items_by_server_order() {
        let server_order = vec![
            json!({"name": "a"}),
            json!({"name": "b"}),
            json!({"name": "c"}),
        ];
        let patch_items = vec![json!({"name": "c"}), json!({"name": "d"})];
        let server_only = vec![json!({"name": "b"}), json!({"name": "a"})];
        let out = normalize(
            patch_items,
            server_only,
            &[json!({"name": "c"}), json!({"name": "d"})],
            &server_order,
            Identity::Key("name"),
        )
        .expect("normalizes");
        assert_eq!(names(&out), vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn order_list_mismatch_is_rejected() {
        let patch = vec![json!({"name": "b"}), json!({"name": "a"})];
        let order = vec![json!({"name": "a"}), json!({"name": "b"})];
        assert!(check_order_list(&patch, &order, Identity::Key("name")).is_err());
        assert!(check_order_list(&order, &order, Identity::Key("name")).is_ok());
        let scalars = vec![json!("x"), json!("y")];
        assert!(check_order_list(&[json!("y")], &scalars, Identity::Scalar).is_ok());
    }
}
