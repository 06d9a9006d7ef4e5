//! Field selectors: `?fieldSelector=` terms comparing a few selectable
//! fields of an object with a value, the per-kind list of fields the API
//! server allows, and how each field reads from a stored object.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use super::SelectorError;

/// Fields every kind supports.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Extra fields per kind, as the Kubernetes registries declare them.
const KIND_FIELDS: &[(&str, &[&str])] = &[
    (
        "Pod",
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    ),
    (
        "Event",
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    ),
    ("Secret", &["type"]),
    ("Node", &["spec.unschedulable"]),
    ("Namespace", &["status.phase"]),
    ("ReplicaSet", &["status.replicas"]),
    ("ReplicationController", &["status.replicas"]),
    ("Job", &["status.successful"]),
];

/// The fields `kind` can be selected by.
pub fn supported_fields(kind: &str) -> impl Iterator<Item = &'static str> {
    let extra = KIND_FIELDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, f)| *f)
        .unwrap_or(&[]);
    COMMON_FIELDS.iter().chain(extra.iter()).copied()
}

/// The value a field selector compares for `field` of `object`: strings
/// as they are, booleans and numbers in their text form, and absent
/// fields as the zero value of their Go type (`""`, `false`, `0`), which is
/// what the API server compares (`spec.nodeName=` selects unbound pods,
/// `spec.unschedulable=false` selects nodes that never set it).
pub fn field_value<'a>(object: &'a Value, field: &str) -> Cow<'a, str> {
    let found = match field {
        // Events expose their reporting component under a short name.
        "source" => object.pointer("/source/component"),
        // The primary IP is the first of `podIPs` when only that is set.
        "status.podIP" => object
            .pointer("/status/podIP")
            .or_else(|| object.pointer("/status/podIPs/0/ip")),
        _ => dotted(object, field),
    };
    match found {
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(Value::Bool(b)) => Cow::Owned(b.to_string()),
        Some(Value::Number(n)) => Cow::Owned(n.to_string()),
        Some(Value::Null) | None => Cow::Borrowed(zero_value(field)),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

fn dotted<'a>(object: &'a Value, field: &str) -> Option<&'a Value> {
    field.split('.').try_fold(object, |v, part| v.get(part))
}

fn zero_value(field: &str) -> &'static str {
    match field {
        "spec.hostNetwork" | "spec.unschedulable" => "false",
        "status.replicas" | "status.successful" => "0",
        _ => "",
    }
}

/// How a field selector term compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    /// `field=value` or `field==value`
    Equals,
    /// `field!=value`
    NotEquals,
}

/// One `field=value` / `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    /// The unescaped value.
    pub value: String,
}

impl FieldRequirement {
    pub fn matches(&self, object: &Value) -> bool {
        let equal = field_value(object, &self.field) == self.value;
        match self.operator {
            FieldOperator::Equals => equal,
            FieldOperator::NotEquals => !equal,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// A field selector: every term must hold. The empty selector matches
/// every object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// In the order of their text, as Kubernetes sorts them.
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses `f=v,g!=w`; `\,`, `\=` and `\\` escape those characters in values.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(selector);
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, operator, raw)) = split_term(term) else {
                return Err(SelectorError::FieldTerm {
                    selector: selector.to_string(),
                    term: term.to_string(),
                });
            };
            let value = unescape_value(raw)?;
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(Self { requirements })
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| r.matches(object))
    }

    /// The value `field` must equal for anything to match, if the selector
    /// pins it (e.g. `spec.nodeName=node-1` for a node's pod watch).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Rejects fields `kind` cannot be selected by, with the API server's
    /// message (`field label not supported: spec.foo`).
    pub fn check_supported(&self, kind: &str) -> Result<(), SelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| !supported_fields(kind).any(|f| f == r.field))
        {
            Some(r) => Err(SelectorError::UnsupportedField(r.field.clone())),
            None => Ok(()),
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Splits on commas that are not backslash-escaped, keeping escapes.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator; field names have no escapes.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

fn unescape_value(raw: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(raw.len());
    let mut escaped = false;
    for c in raw.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::FieldValue(format!(
                    "invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '=' => {
                return Err(SelectorError::FieldValue(format!(
                    "unescaped character in value: {c}"
                )));
            }
            c => out.push(c),
        }
    }
    if escaped {
        return Err(SelectorError::FieldValue(
            "invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

fn escape_value(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace(',', r"\,")
        .replace('=', r"\=")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod() -> Value {
        json!({
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "prod"},
            "spec": {"restartPolicy": "Always"},
            "status": {"phase": "Pending", "podIPs": [{"ip": "10.0.0.5"}]},
        })
    }

    #[test]
    fn terms_compare_equal_and_not_equal() {
        let p = pod();
        assert!(
            FieldSelector::parse("metadata.name=web-1")
                .expect("parses")
                .matches(&p)
        );
        assert!(
            FieldSelector::parse("metadata.name==web-1")
                .expect("parses")
                .matches(&p)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=web-1")
                .expect("parses")
                .matches(&p)
        );
        assert!(
            FieldSelector::parse("status.phase!=Running,metadata.namespace=prod")
                .expect("parses")
                .matches(&p)
        );
        assert!(
            !FieldSelector::parse("status.phase!=Running,metadata.namespace=dev")
                .expect("parses")
                .matches(&p)
        );
        assert!(FieldSelector::parse("").expect("parses").matches(&p));
    }

    #[test]
    fn missing_fields_compare_as_their_zero_value() {
        let p = pod();
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .expect("parses")
                .matches(&p)
        );
        assert!(
            !FieldSelector::parse("spec.nodeName!=")
                .expect("parses")
                .matches(&p)
        );
        assert!(
            FieldSelector::parse("spec.hostNetwork=false")
                .expect("parses")
                .matches(&p)
        );
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        assert!(
            FieldSelector::parse("spec.unschedulable=false")
                .expect("parses")
                .matches(&node)
        );
        let rs = json!({"metadata": {"name": "r"}, "status": {}});
        assert!(
            FieldSelector::parse("status.replicas=0")
                .expect("parses")
                .matches(&rs)
        );
    }

    #[test]
    fn booleans_and_numbers_compare_by_their_text() {
        let node = json!({"spec": {"unschedulable": true}});
        assert!(
            FieldSelector::parse("spec.unschedulable=true")
                .expect("parses")
                .matches(&node)
        );
        let rs = json!({"status": {"replicas": 3}});
        assert!(
            FieldSelector::parse("status.replicas=3")
                .expect("parses")
                .matches(&rs)
        );
        assert!(
            FieldSelector::parse("status.replicas!=0")
                .expect("parses")
                .matches(&rs)
        );
    }

    #[test]
    fn pod_ip_and_event_source_read_their_kubernetes_fields() {
        assert_eq!(field_value(&pod(), "status.podIP"), "10.0.0.5");
        let event = json!({"source": {"component": "kubelet"}, "involvedObject": {"kind": "Pod", "name": "p"}});
        assert_eq!(field_value(&event, "source"), "kubelet");
        assert!(
            FieldSelector::parse("involvedObject.kind=Pod,involvedObject.name=p,source=kubelet")
                .expect("parses")
                .matches(&event)
        );
    }

    #[test]
    fn escaped_values_round_trip() {
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").expect("parses");
        assert_eq!(s.requirements()[0].value, r"a,b=c\d");
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d");
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        assert_eq!(
            FieldSelector::parse("metadata.name").map_err(|e| e.to_string()),
            Err("invalid selector: 'metadata.name'; can't understand 'metadata.name'".to_string())
        );
        assert!(FieldSelector::parse(r"a=b\x").is_err());
        assert!(FieldSelector::parse("a=b=c").is_err());
        assert!(FieldSelector::parse(r"a=b\").is_err());
    }

    #[test]
    fn terms_are_kept_in_sorted_order() {
        let s = FieldSelector::parse("status.phase=Running,metadata.name=a,,").expect("parses");
        assert_eq!(s.to_string(), "metadata.name=a,status.phase=Running");
    }

    #[test]
    fn unsupported_fields_are_named() {
        let s = FieldSelector::parse("spec.nodeName=n,spec.foo=x").expect("parses");
        assert_eq!(
            s.check_supported("Pod").map_err(|e| e.to_string()),
            Err("field label not supported: spec.foo".to_string())
        );
        assert!(
            FieldSelector::parse("spec.nodeName=n")
                .expect("parses")
                .check_supported("Pod")
                .is_ok()
        );
        assert!(
            FieldSelector::parse("spec.nodeName=n")
                .expect("parses")
                .check_supported("Service")
                .is_err()
        );
        assert!(
            FieldSelector::parse("metadata.name=a")
                .expect("parses")
                .check_supported("ConfigMap")
                .is_ok()
        );
        assert!(
            FieldSelector::parse("type=Warning,reason=x")
                .expect("parses")
                .check_supported("Event")
                .is_ok()
        );
        assert!(
            FieldSelector::parse("type=Opaque")
                .expect("parses")
                .check_supported("Secret")
                .is_ok()
        );
        assert!(
            FieldSelector::parse("status.successful=1")
                .expect("parses")
                .check_supported("Job")
                .is_ok()
        );
    }

    #[test]
    fn exact_matches_are_reported() {
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").expect("parses");
        assert_eq!(s.requires_exact_match("spec.nodeName"), Some("n1"));
        assert_eq!(s.requires_exact_match("status.phase"), None);
    }
}
