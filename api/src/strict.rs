//! Strict decoding (`fieldValidation=Strict` / `Warn`): the fields of a
//! request body that the kind's type does not know, the keys that appear
//! twice in one object, and the message the Kubernetes API server words
//! them with.

use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Paths of every field in `value` that `T` ignores when decoding, printed
/// as Kubernetes prints them: `spec.containers[0].imagePullPolicyy`.
///
/// A value that fails to decode is admission's problem, not this
/// function's: the fields met before the failure are still listed.
pub fn unknown_fields<T: DeserializeOwned>(value: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let _: Result<T, _> = serde_ignored::deserialize(value, |path| unknown.push(field_path(&path)));
    unknown
}

/// Paths of every key that appears more than once in the same object of a
/// JSON (`yaml == false`) or YAML body, in document order.
///
/// `Err` carries the parser's message when the body is not well-formed.
pub fn duplicate_fields(body: &[u8], yaml: bool) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    if yaml {
        let de = serde_yaml::Deserializer::from_slice(body);
        Walk {
            path: String::new(),
            found: &mut found,
        }
        .deserialize(de)
        .map_err(|e| e.to_string())?;
    } else {
        let mut de = serde_json::Deserializer::from_slice(body);
        Walk {
            path: String::new(),
            found: &mut found,
        }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
    }
    Ok(found)
}

/// The `BadRequest` message of a strict decoding failure:
/// `strict decoding error: unknown field "spec.foo", duplicate field "metadata.name"`.
pub fn strict_error_message(unknown: &[String], duplicate: &[String]) -> String {
    let causes: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .chain(duplicate.iter().map(|f| format!("duplicate field \"{f}\"")))
        .collect();
    format!("strict decoding error: {}", causes.join(", "))
}

/// Renders a `serde_ignored` path with map keys joined by dots and list
/// indices in brackets; `Option` and newtype layers add nothing.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    let mut out = String::new();
    write_path(path, &mut out);
    out
}

fn write_path(path: &serde_ignored::Path<'_>, out: &mut String) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            write_path(parent, out);
            out.push_str(&format!("[{index}]"));
        }
        Path::Map { parent, key } => {
            write_path(parent, out);
            push_key(out, key);
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => write_path(parent, out),
    }
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

/// Walks any self-describing document, recording each repeated map key
/// under the path of its object.
struct Walk<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let path = format!("{}[{index}]", self.path);
            if seq
                .next_element_seed(Walk {
                    path,
                    found: &mut *self.found,
                })?
                .is_none()
            {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key_seed(KeyText)? {
            let mut path = self.path.clone();
            push_key(&mut path, &key);
            if !seen.insert(key) {
                self.found.push(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // YAML tags (`!foo value`) arrive as enums; the tagged value is walked
        // like any other.
        let (_, variant) = data.variant::<de::IgnoredAny>()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

/// Reads a map key as text; YAML allows scalar keys of any type.
struct KeyText;

impl<'de> DeserializeSeed<'de> for KeyText {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar map key")
    }

    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_pod_fields_carry_list_indices() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labelz": {"a": "b"}, "labels": {"any-key": "v"}},
            "spec": {"containers": [
                {"name": "a", "image": "x"},
                {"name": "b", "image": "y", "imagePullPolicyy": "Always",
                 "env": [{"name": "E", "valuee": "1"}]}
            ]},
        });
        assert_eq!(
            unknown_fields::<Pod>(&pod),
            vec![
                "metadata.labelz",
                "spec.containers[1].env[0].valuee",
                "spec.containers[1].imagePullPolicyy"
            ]
        );
    }

    #[test]
    fn unknown_deployment_fields_inside_the_pod_template() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {
                "replicas": 1, "replica": 2,
                "selector": {"matchLabels": {"app": "d"}},
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "c", "image": "i", "portz": []}]}
                }
            },
        });
        assert_eq!(
            unknown_fields::<Deployment>(&deployment),
            vec!["spec.replica", "spec.template.spec.containers[0].portz"]
        );
    }

    #[test]
    fn known_fields_are_not_reported() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]}});
        assert!(unknown_fields::<Pod>(&pod).is_empty());
    }

    #[test]
    fn duplicate_json_keys_are_found_with_their_paths() {
        let body = br#"{"metadata": {"name": "a", "name": "b"},
            "spec": {"containers": [{"name": "c"}, {"name": "d", "image": "x", "image": "y"}]},
            "spec": {}}"#;
        assert_eq!(
            duplicate_fields(body, false),
            Ok(vec![
                "metadata.name".to_string(),
                "spec.containers[1].image".to_string(),
                "spec".to_string()
            ])
        );
    }

    #[test]
    fn duplicate_yaml_keys_are_found_with_their_paths() {
        let body = b"metadata:\n  name: a\n  labels:\n    x: y\n    x: z\nspec: {}\n";
        assert_eq!(
            duplicate_fields(body, true),
            Ok(vec!["metadata.labels.x".to_string()])
        );
    }

    #[test]
    fn bodies_without_duplicates_yield_nothing() {
        assert_eq!(
            duplicate_fields(br#"{"a": {"b": 1}, "c": [{"b": 2}, {"b": 3}]}"#, false),
            Ok(vec![])
        );
        assert_eq!(
            duplicate_fields(b"a:\n  b: 1\nc:\n- b: 2\n- b: 3\n", true),
            Ok(vec![])
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(duplicate_fields(br#"{"a": "#, false).is_err());
        assert!(duplicate_fields(br#"{"a": 1} x"#, false).is_err());
        assert!(duplicate_fields(b"a: [\n", true).is_err());
    }

    #[test]
    fn strict_message_lists_unknown_then_duplicate_fields() {
        assert_eq!(
            strict_error_message(
                &["spec.foo".into(), "spec.bar".into()],
                &["metadata.name".into()]
            ),
            r#"strict decoding error: unknown field "spec.foo", unknown field "spec.bar", duplicate field "metadata.name""#
        );
    }
}
