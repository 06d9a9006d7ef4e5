//! Cell formatting shared by the printers: reading fields of a JSON object,
//! kubectl's human durations, and the label and selector notations
//! kube-apiserver prints.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

/// The string at `pointer` (RFC 6901), or `""` when absent or not a string,
/// which is how Go's zero value prints.
pub(super) fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The string at `pointer`, or `fallback` when absent or empty.
pub(super) fn text_or<'a>(v: &'a Value, pointer: &str, fallback: &'a str) -> &'a str {
    match text(v, pointer) {
        "" => fallback,
        s => s,
    }
}

/// The integer at `pointer`, or 0.
pub(super) fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The integer at `pointer`, or `default` when absent (for fields the API
/// defaults, such as `spec.replicas`).
pub(super) fn int_or(v: &Value, pointer: &str, default: i64) -> i64 {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

/// The boolean at `pointer`, or false.
pub(super) fn flag(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at `pointer`, or an empty slice.
pub(super) fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The number of entries of the array or map at `pointer`.
pub(super) fn count(v: &Value, pointer: &str) -> i64 {
    let n = match v.pointer(pointer) {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The object at `pointer` when present: Go's non-nil pointer to a struct.
pub(super) fn object<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer).filter(|o| o.is_object())
}

/// The timestamp at `pointer`, when present and well-formed.
pub(super) fn timestamp(v: &Value, pointer: &str) -> Option<Timestamp> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// kubectl's "time since" cell: the human duration from the timestamp at
/// `pointer` to `now`, or `<unknown>` when there is none.
pub(super) fn since(v: &Value, pointer: &str, now: Timestamp) -> String {
    match timestamp(v, pointer) {
        Some(t) => human_duration_between(t, now),
        None => "<unknown>".to_string(),
    }
}

/// The human duration from `from` to `to`.
pub(super) fn human_duration_between(from: Timestamp, to: Timestamp) -> String {
    human_duration(to.duration_since(from).as_secs())
}

/// `duration.HumanDuration` of apimachinery: about two significant figures,
/// e.g. `45s`, `3m12s`, `25m`, `5h3m`, `30h`, `2d3h`, `400d`, `3y20d`.
/// Up to one second in the future counts as now, to tolerate clock skew.
pub(super) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, or `<none>`.
pub(super) fn labels(map: Option<&Value>) -> String {
    let Some(Value::Object(map)) = map else {
        return "<none>".to_string();
    };
    // serde_json's map is sorted by key unless `preserve_order` is on, so
    // sort explicitly to print the same either way.
    let mut pairs: Vec<(&String, &str)> = map
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    pairs.sort_unstable();
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if joined.is_empty() {
        "<none>".to_string()
    } else {
        joined.join(",")
    }
}

/// `metav1.FormatLabelSelector`: a `LabelSelector` in the selector syntax
/// (`app=web,tier in (a,b),!legacy`), requirements sorted by key; `<none>`
/// for an absent or empty selector and `<error>` for an unknown operator.
pub(super) fn label_selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector.filter(|s| s.is_object()) else {
        return "<none>".to_string();
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(match_labels)) = selector.get("matchLabels") {
        for (key, value) in match_labels {
            requirements.push((
                key.clone(),
                format!("{key}={}", value.as_str().unwrap_or("")),
            ));
        }
    }
    for expression in list(selector, "/matchExpressions") {
        let key = text(expression, "/key");
        let values: BTreeSet<&str> = list(expression, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let values = values.into_iter().collect::<Vec<_>>().join(",");
        let requirement = match text(expression, "/operator") {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return "<error>".to_string(),
        };
        requirements.push((key.to_string(), requirement));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    let joined: Vec<String> = requirements.into_iter().map(|(_, r)| r).collect();
    if joined.is_empty() {
        "<none>".to_string()
    } else {
        joined.join(",")
    }
}

/// The `Containers` and `Images` cells of a pod template: names and images
/// joined by commas.
pub(super) fn containers_and_images(pod_spec: &Value) -> (String, String) {
    let containers = list(pod_spec, "/containers");
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// The cell of an optional boolean: `True`, `False` or `<unset>`.
pub(super) fn bool_cell(v: Option<&Value>) -> &'static str {
    match v.and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn human_duration_follows_apimachinery_rules() {
        let cases = [
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 3 * 60, "5h3m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (51 * 3600, "2d3h"),
            (72 * 3600, "3d"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (750 * 86400, "2y20d"),
            (8 * 365 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn since_reports_unknown_without_timestamp() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap_or_default();
        let obj = json!({"metadata": {"creationTimestamp": "2024-05-01T11:56:48Z"}});
        assert_eq!(since(&obj, "/metadata/creationTimestamp", now), "3m12s");
        assert_eq!(since(&obj, "/metadata/deletionTimestamp", now), "<unknown>");
    }

    #[test]
    fn labels_print_sorted_pairs() {
        assert_eq!(
            labels(Some(&json!({"tier": "web", "app": "x"}))),
            "app=x,tier=web"
        );
        assert_eq!(labels(Some(&json!({}))), "<none>");
        assert_eq!(labels(None), "<none>");
    }

    #[test]
    fn label_selector_prints_selector_syntax() {
        let selector = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "canary", "operator": "Exists"},
            ],
        });
        assert_eq!(
            label_selector(Some(&selector)),
            "app=web,canary,env notin (prod),!legacy,tier in (a,b)"
        );
        assert_eq!(label_selector(Some(&json!({}))), "<none>");
        assert_eq!(label_selector(None), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert_eq!(label_selector(Some(&bad)), "<error>");
    }
}
