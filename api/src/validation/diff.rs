//! Names the fields that differ between two values, for the messages of
//! "may not change fields other than ..." errors (Kubernetes prints a diff).

use serde::Serialize;
use serde_json::Value;

use super::field::Path;

/// How many differences a message lists before it stops.
const MAX_LISTED: usize = 8;
/// How long a printed value may get before it is cut.
const MAX_VALUE_CHARS: usize = 80;

/// One line per differing leaf, `  <path>: <old> -> <new>`.
pub fn describe_changes<T: Serialize>(old: &T, new: &T, root: &Path) -> String {
    let (Ok(old), Ok(new)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return String::new();
    };
    let mut lines = Vec::new();
    collect(&old, &new, root, &mut lines);
    let more = lines.len().saturating_sub(MAX_LISTED);
    lines.truncate(MAX_LISTED);
    if more > 0 {
        lines.push(format!("  ... and {more} more"));
    }
    lines.join("\n")
}

fn collect(old: &Value, new: &Value, path: &Path, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                collect(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &path.child(k),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                collect(x, y, &path.index(i), out);
            }
        }
        _ => out.push(format!("  {path}: {} -> {}", short(old), short(new))),
    }
}

fn short(v: &Value) -> String {
    let s = if v.is_null() {
        "<unset>".to_string()
    } else {
        v.to_string()
    };
    if s.chars().count() > MAX_VALUE_CHARS {
        format!("{}...", s.chars().take(MAX_VALUE_CHARS).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_changed_leaves_with_paths() {
        let old = json!({"containers": [{"name": "a", "ports": [{"containerPort": 80}]}], "x": 1});
        let new = json!({"containers": [{"name": "a", "ports": [{"containerPort": 81}]}], "y": 2});
        assert_eq!(
            describe_changes(&old, &new, &Path::new("spec")),
            "  spec.containers[0].ports[0].containerPort: 80 -> 81\n  spec.x: 1 -> <unset>\n  spec.y: <unset> -> 2"
        );
    }
}
