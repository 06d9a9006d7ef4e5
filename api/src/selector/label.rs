//! Label selectors: a conjunction of requirements on an object's labels,
//! built from the `?labelSelector=` string or from a `metav1.LabelSelector`,
//! matched as the API server matches them, and printed in the canonical
//! form (`Scale.status.selector`, kubectl's describe output).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::{Map, Value};

use super::SelectorError;
use super::names::{is_qualified_name, is_valid_label_value};

/// How a requirement compares a label with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>5` (integer comparison)
    GreaterThan,
    /// `key<5` (integer comparison)
    LessThan,
}

/// One term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and without duplicates, so the printed form is canonical.
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, checking the key, the values and their number
    /// against the operator as Kubernetes' `labels.NewRequirement` does.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: impl IntoIterator<Item = String>,
    ) -> Result<Self, SelectorError> {
        let key = key.into();
        check_key(&key)?;
        let mut values: Vec<String> = values.into_iter().collect();
        values.sort();
        values.dedup();
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err(invalid(
                    "values",
                    "",
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                return Err(invalid(
                    "values",
                    values.join(","),
                    "exact-match compatibility requires one single value",
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err(invalid(
                    "values",
                    values.join(","),
                    "values set must be empty for exists and does not exist",
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    return Err(invalid(
                        "values",
                        values.join(","),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(invalid(
                        "values[0]",
                        &values[0],
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
            _ => {}
        }
        for (i, value) in values.iter().enumerate() {
            let errs = is_valid_label_value(value);
            if !errs.is_empty() {
                return Err(invalid(&format!("values[{i}]"), value, &errs.join("; ")));
            }
        }
        Ok(Self {
            key,
            operator,
            values,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement; an absent label never
    /// equals anything and always differs from everything.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let label = labels.and_then(|l| l.get(&self.key)).map(label_text);
        let has_value = |v: &str| self.values.iter().any(|x| x == v);
        match (self.operator, label) {
            (Operator::In | Operator::Equals | Operator::DoubleEquals, Some(v)) => has_value(&v),
            (Operator::In | Operator::Equals | Operator::DoubleEquals, None) => false,
            (Operator::NotIn | Operator::NotEquals, Some(v)) => !has_value(&v),
            (Operator::NotIn | Operator::NotEquals, None) => true,
            (Operator::Exists, label) => label.is_some(),
            (Operator::DoesNotExist, label) => label.is_none(),
            (Operator::GreaterThan | Operator::LessThan, None) => false,
            (op @ (Operator::GreaterThan | Operator::LessThan), Some(v)) => {
                let (Ok(have), Some(Ok(want))) = (
                    v.parse::<i64>(),
                    self.values.first().map(|w| w.parse::<i64>()),
                ) else {
                    return false;
                };
                if op == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let values = self.values.join(",");
        match self.operator {
            Operator::Exists | Operator::DoesNotExist => Ok(()),
            Operator::Equals => write!(f, "={values}"),
            Operator::DoubleEquals => write!(f, "=={values}"),
            Operator::NotEquals => write!(f, "!={values}"),
            Operator::GreaterThan => write!(f, ">{values}"),
            Operator::LessThan => write!(f, "<{values}"),
            Operator::In => write!(f, " in ({values})"),
            Operator::NotIn => write!(f, " notin ({values})"),
        }
    }
}

/// A label selector: every requirement must hold. The empty selector
/// matches every object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Sorted by key, as Kubernetes keeps them.
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses the string form (`a=b,c!=d,e in (f,g),!h`).
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        Ok(Self::from_requirements(super::parser::parse(selector)?))
    }

    /// Converts the API form (`matchLabels` and `matchExpressions`), as
    /// `metav1.LabelSelectorAsSelector` does.
    pub fn from_api(selector: &meta::LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::new(
                key.clone(),
                Operator::Equals,
                [value.clone()],
            )?);
        }
        for expr in selector.match_expressions.iter().flatten() {
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::UnknownOperator(other.to_string())),
            };
            requirements.push(Requirement::new(
                expr.key.clone(),
                operator,
                expr.values.iter().flatten().cloned(),
            )?);
        }
        Ok(Self::from_requirements(requirements))
    }

    /// Converts a plain map selector (Service, ReplicationController):
    /// every label must equal its value.
    pub fn from_map(labels: &BTreeMap<String, String>) -> Result<Self, SelectorError> {
        let requirements = labels
            .iter()
            .map(|(k, v)| Requirement::new(k.clone(), Operator::Equals, [v.clone()]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_requirements(requirements))
    }

    /// Builds a selector from requirements, ordering them by key.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self { requirements }
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels (`metadata.labels`) is selected.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
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

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Labels are strings; anything else stored there compares by its JSON text.
fn label_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn check_key(key: &str) -> Result<(), SelectorError> {
    let errs = is_qualified_name(key);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid("key", key, &errs.join("; ")))
    }
}

/// A field error worded as Kubernetes' `field.Invalid(...).Error()`.
fn invalid(field: &str, value: impl fmt::Display, detail: &str) -> SelectorError {
    SelectorError::InvalidRequirement(format!("{field}: Invalid value: \"{value}\": {detail}"))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use serde_json::json;

    use super::*;

    fn labels(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn requirements_match_like_kubernetes() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "7"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("missing=x", false),
            ("app in (db,web)", true),
            ("app notin (db,web)", false),
            ("missing notin (x)", true),
            ("missing in (x)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("n>5", true),
            ("n<5", false),
            ("app>5", false),
            ("missing>5", false),
            ("app=web,tier=back", false),
            ("app=web,tier=front", true),
            ("", true),
        ];
        for (selector, want) in cases {
            let s = LabelSelector::parse(selector).expect(selector);
            assert_eq!(s.matches(Some(&l)), want, "{selector}");
        }
    }

    #[test]
    fn objects_without_labels_match_only_negative_requirements() {
        assert!(
            LabelSelector::parse("!a,b!=c,d notin (e)")
                .expect("parses")
                .matches(None)
        );
        assert!(!LabelSelector::parse("a").expect("parses").matches(None));
    }

    #[test]
    fn canonical_form_sorts_keys_and_values() {
        let s = LabelSelector::parse(" tier in (web, api) , app = x,!gone,  has ").expect("parses");
        assert_eq!(s.to_string(), "app=x,!gone,has,tier in (api,web)");
    }

    #[test]
    fn api_form_converts_match_labels_and_expressions() {
        let api = meta::LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["prod".into(), "dev".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        let s = LabelSelector::from_api(&api).expect("converts");
        assert_eq!(s.to_string(), "app=web,!canary,env notin (dev,prod)");
        assert!(s.matches(Some(&labels(json!({"app": "web", "env": "qa"})))));
        assert!(!s.matches(Some(&labels(json!({"app": "web", "canary": "1"})))));
    }

    #[test]
    fn api_form_rejects_unknown_operators_and_bad_values() {
        let bad_op = meta::LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "Equals".into(),
                values: None,
            }]),
        };
        assert_eq!(
            LabelSelector::from_api(&bad_op).map_err(|e| e.to_string()),
            Err("\"Equals\" is not a valid label selector operator".to_string())
        );
        let empty_in = meta::LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "In".into(),
                values: Some(vec![]),
            }]),
        };
        assert!(LabelSelector::from_api(&empty_in).is_err());
        let bad_value = meta::LabelSelector {
            match_labels: Some(BTreeMap::from([("a".into(), "-x".into())])),
            match_expressions: None,
        };
        assert!(LabelSelector::from_api(&bad_value).is_err());
    }

    #[test]
    fn empty_api_selector_matches_everything() {
        let s = LabelSelector::from_api(&meta::LabelSelector::default()).expect("converts");
        assert!(s.is_empty());
        assert!(s.matches(None));
        assert_eq!(s.to_string(), "");
    }

    #[test]
    fn map_selectors_require_every_label() {
        let s = LabelSelector::from_map(&BTreeMap::from([
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
        ]))
        .expect("converts");
        assert_eq!(s.to_string(), "a=1,b=2");
        assert!(s.matches(Some(&labels(json!({"a": "1", "b": "2", "c": "3"})))));
        assert!(!s.matches(Some(&labels(json!({"a": "1"})))));
    }
}
