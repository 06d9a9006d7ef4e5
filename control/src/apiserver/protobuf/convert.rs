//! Building blocks of the protobuf-to-JSON conversions: an object builder
//! that applies the Kubernetes JSON encoding's omission rules, the scalar
//! types of apimachinery (Time, Quantity, IntOrString), and the field path
//! carried by a conversion failure.
//!
//! Go's protobuf encoder always writes non-pointer fields, so an unset Go
//! `string`, `int32` or `bool` arrives as `Some("")`, `Some(0)` or
//! `Some(false)`, while a pointer field arrives only when it is set. The
//! builder therefore has two flavours of each setter: the plain one drops
//! the zero value, as `omitempty` does in JSON; the `opt_` one keeps it,
//! because for a pointer field (`replicas: 0`, `suspend: false`) zero is a
//! choice the user made.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1::Time;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Map, Value};

/// The result of converting one message.
pub(super) type Conv<T = Value> = Result<T, FieldError>;

/// Why a field could not be converted, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The JSON path of the field, e.g. `spec.containers[0].securityContext`.
    pub path: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The field is set but this decoder has no conversion for it.
    Unsupported,
    /// The field holds a value no Kubernetes encoder produces.
    Invalid(String),
}

impl FieldError {
    pub(super) fn unsupported(field: &str) -> Self {
        Self {
            path: field.to_string(),
            problem: Problem::Unsupported,
        }
    }

    pub(super) fn invalid(field: &str, why: impl Into<String>) -> Self {
        Self {
            path: field.to_string(),
            problem: Problem::Invalid(why.into()),
        }
    }

    /// Prefixes the path with the field that contains it.
    pub(super) fn at(mut self, parent: &str) -> Self {
        self.path = if self.path.is_empty() {
            parent.to_string()
        } else {
            format!("{parent}.{}", self.path)
        };
        self
    }
}

/// A JSON object under construction.
#[derive(Debug, Default)]
pub(super) struct Obj(Map<String, Value>);

impl Obj {
    pub(super) fn new() -> Self {
        Self::default()
    }

    pub(super) fn done(self) -> Value {
        Value::Object(self.0)
    }

    fn put(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.to_string(), value);
        self
    }

    /// A Go `string`: empty means unset.
    pub(super) fn str(self, key: &str, v: Option<String>) -> Self {
        match v {
            Some(s) if !s.is_empty() => self.put(key, Value::String(s)),
            _ => self,
        }
    }

    /// A Go `*string`: present even when empty.
    pub(super) fn opt_str(self, key: &str, v: Option<String>) -> Self {
        match v {
            Some(s) => self.put(key, Value::String(s)),
            None => self,
        }
    }

    /// A Go integer: zero means unset.
    pub(super) fn int<I: Into<i64>>(self, key: &str, v: Option<I>) -> Self {
        match v.map(Into::into) {
            Some(n) if n != 0 => self.put(key, Value::from(n)),
            _ => self,
        }
    }

    /// A Go `*int32` or `*int64`: present even when zero.
    pub(super) fn opt_int<I: Into<i64>>(self, key: &str, v: Option<I>) -> Self {
        match v {
            Some(n) => self.put(key, Value::from(n.into())),
            None => self,
        }
    }

    /// A Go `bool`: false means unset.
    pub(super) fn flag(self, key: &str, v: Option<bool>) -> Self {
        match v {
            Some(true) => self.put(key, Value::Bool(true)),
            _ => self,
        }
    }

    /// A Go `*bool`: present even when false.
    pub(super) fn opt_bool(self, key: &str, v: Option<bool>) -> Self {
        match v {
            Some(b) => self.put(key, Value::Bool(b)),
            None => self,
        }
    }

    /// A `[]string`: empty means unset.
    pub(super) fn strs(self, key: &str, v: Vec<String>) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(key, Value::from(v))
        }
    }

    /// A `[]int32`: empty means unset.
    pub(super) fn ints(self, key: &str, v: Vec<i32>) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(key, Value::from(v))
        }
    }

    /// A `[]int64`: empty means unset.
    pub(super) fn longs(self, key: &str, v: Vec<i64>) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(key, Value::from(v))
        }
    }

    /// A `map[string]string`: empty means unset; empty values are kept.
    pub(super) fn map(self, key: &str, v: BTreeMap<String, String>) -> Self {
        if v.is_empty() {
            return self;
        }
        let map = v.into_iter().map(|(k, s)| (k, Value::String(s))).collect();
        self.put(key, Value::Object(map))
    }

    /// A `map[string][]byte`, base64-encoded as in the JSON form.
    pub(super) fn bytes_map(self, key: &str, v: BTreeMap<String, Vec<u8>>) -> Self {
        if v.is_empty() {
            return self;
        }
        let map = v
            .into_iter()
            .map(|(k, b)| (k, Value::String(STANDARD.encode(b))))
            .collect();
        self.put(key, Value::Object(map))
    }

    /// A `ResourceList`: resource name to quantity string.
    pub(super) fn quantities(self, key: &str, v: BTreeMap<String, Quantity>) -> Self {
        if v.is_empty() {
            return self;
        }
        let map = v
            .into_iter()
            .map(|(k, q)| (k, Value::String(q.string.unwrap_or_default())))
            .collect();
        self.put(key, Value::Object(map))
    }

    /// A `*resource.Quantity`.
    pub(super) fn quantity(self, key: &str, v: Option<Quantity>) -> Self {
        match v {
            Some(q) => self.put(key, Value::String(q.string.unwrap_or_default())),
            None => self,
        }
    }

    /// A `metav1.Time` or `*metav1.Time`, as RFC 3339 in UTC.
    pub(super) fn time(self, key: &str, v: Option<Time>) -> Conv<Self> {
        match v.map(time).transpose().map_err(|e| e.at(key))?.flatten() {
            Some(t) => Ok(self.put(key, Value::String(t))),
            None => Ok(self),
        }
    }

    /// An `intstr.IntOrString` held by value: `0` and `""` mean unset.
    pub(super) fn int_or_string(self, key: &str, v: Option<IntOrString>) -> Conv<Self> {
        match v.map(int_or_string).transpose().map_err(|e| e.at(key))? {
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(self),
            Some(Value::String(s)) if s.is_empty() => Ok(self),
            Some(value) => Ok(self.put(key, value)),
            None => Ok(self),
        }
    }

    /// A `*intstr.IntOrString`: present even when zero.
    pub(super) fn opt_int_or_string(self, key: &str, v: Option<IntOrString>) -> Conv<Self> {
        match v.map(int_or_string).transpose().map_err(|e| e.at(key))? {
            Some(value) => Ok(self.put(key, value)),
            None => Ok(self),
        }
    }

    /// A struct held by value: omitted when it converts to `{}`.
    pub(super) fn msg<T>(self, key: &str, v: Option<T>, f: impl FnOnce(T) -> Conv) -> Conv<Self> {
        match v.map(f).transpose().map_err(|e| e.at(key))? {
            Some(Value::Object(m)) if m.is_empty() => Ok(self),
            Some(value) => Ok(self.put(key, value)),
            None => Ok(self),
        }
    }

    /// A struct held by pointer: present even when empty (`emptyDir: {}`).
    pub(super) fn ptr<T>(self, key: &str, v: Option<T>, f: impl FnOnce(T) -> Conv) -> Conv<Self> {
        match v.map(f).transpose().map_err(|e| e.at(key))? {
            Some(value) => Ok(self.put(key, value)),
            None => Ok(self),
        }
    }

    /// A list of structs: empty means unset.
    pub(super) fn list<T>(self, key: &str, v: Vec<T>, mut f: impl FnMut(T) -> Conv) -> Conv<Self> {
        if v.is_empty() {
            return Ok(self);
        }
        let items = v
            .into_iter()
            .enumerate()
            .map(|(i, item)| f(item).map_err(|e| e.at(&format!("{key}[{i}]"))))
            .collect::<Conv<Vec<Value>>>()?;
        Ok(self.put(key, Value::Array(items)))
    }

    /// A struct embedded with `json:",inline"`: its fields join this object.
    pub(super) fn inline<T>(mut self, v: Option<T>, f: impl FnOnce(T) -> Conv) -> Conv<Self> {
        if let Some(Value::Object(fields)) = v.map(f).transpose()? {
            self.0.extend(fields);
        }
        Ok(self)
    }
}

/// Fails when a pointer field this decoder does not convert is set.
pub(super) fn reject<T>(key: &str, v: &Option<T>) -> Conv<()> {
    if v.is_some() {
        Err(FieldError::unsupported(key))
    } else {
        Ok(())
    }
}

/// Fails when a repeated field this decoder does not convert has items.
pub(super) fn reject_list<T>(key: &str, v: &[T]) -> Conv<()> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(FieldError::unsupported(key))
    }
}

/// Fails when a struct held by value (such as `status`) that this decoder
/// does not convert holds anything but zero values. Go always encodes such
/// a struct, with every non-pointer field written out, so presence alone
/// says nothing.
pub(super) fn reject_nonzero<M: Message>(key: &str, v: &Option<M>) -> Conv<()> {
    match v {
        Some(m) if !is_zero_message(&m.encode_to_vec()) => Err(FieldError::unsupported(key)),
        _ => Ok(()),
    }
}

/// Whether encoded protobuf bytes carry only zero values: varints of 0,
/// empty strings, and nested messages that are themselves all zero.
fn is_zero_message(mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        let Some((key, rest)) = varint(bytes) else {
            return false;
        };
        if key >> 3 == 0 {
            return false;
        }
        bytes = rest;
        match key & 7 {
            0 => match varint(bytes) {
                Some((0, rest)) => bytes = rest,
                _ => return false,
            },
            2 => {
                let Some((len, rest)) = varint(bytes) else {
                    return false;
                };
                let Some(len) = usize::try_from(len).ok().filter(|&l| l <= rest.len()) else {
                    return false;
                };
                let (payload, rest) = rest.split_at(len);
                if !is_zero_message(payload) {
                    return false;
                }
                bytes = rest;
            }
            _ => return false,
        }
    }
    true
}

fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// The Go zero `time.Time` (year 1), which some encoders write for an
/// unset timestamp.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Formats a timestamp the way `metav1.Time` marshals to JSON; `None` when
/// it is the zero time.
fn time(t: Time) -> Conv<Option<String>> {
    let Time { seconds, nanos: _ } = t;
    match seconds {
        None | Some(GO_ZERO_TIME_SECONDS) => Ok(None),
        Some(s) => {
            let ts = jiff::Timestamp::from_second(s).map_err(|e| {
                FieldError::invalid("", format!("timestamp {s} is out of range: {e}"))
            })?;
            Ok(Some(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
        }
    }
}

/// An IntOrString as JSON: a number for type 0, a string for type 1.
fn int_or_string(v: IntOrString) -> Conv {
    let IntOrString {
        r#type,
        int_val,
        str_val,
    } = v;
    match r#type.unwrap_or(0) {
        0 => Ok(Value::from(int_val.unwrap_or(0))),
        1 => Ok(Value::String(str_val.unwrap_or_default())),
        other => Err(FieldError::invalid(
            "",
            format!("IntOrString type {other} is neither 0 (int) nor 1 (string)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_setters_drop_go_zero_values_and_opt_setters_keep_them() {
        let v = Obj::new()
            .str("a", Some(String::new()))
            .opt_str("b", Some(String::new()))
            .int("c", Some(0))
            .opt_int("d", Some(0))
            .flag("e", Some(false))
            .opt_bool("f", Some(false))
            .strs("g", vec![])
            .map("h", BTreeMap::from([("k".to_string(), String::new())]))
            .done();
        assert_eq!(v, json!({"b": "", "d": 0, "f": false, "h": {"k": ""}}));
    }

    #[test]
    fn value_structs_that_convert_to_nothing_are_omitted_but_pointers_are_kept() {
        let v = Obj::new()
            .msg("resources", Some(()), |()| Ok(json!({})))
            .and_then(|o| o.ptr("emptyDir", Some(()), |()| Ok(json!({}))))
            .map(Obj::done);
        assert_eq!(v, Ok(json!({"emptyDir": {}})));
    }

    #[test]
    fn errors_carry_the_json_path_of_the_field() {
        let err = Obj::new()
            .list("containers", vec![(), ()], |()| {
                Err(FieldError::unsupported("securityContext"))
            })
            .map(Obj::done)
            .map_err(|e| e.at("spec"));
        assert_eq!(
            err,
            Err(FieldError::unsupported(
                "spec.containers[0].securityContext"
            ))
        );
    }

    #[test]
    fn time_formats_as_rfc3339_seconds_and_zero_time_is_unset() {
        let v = Obj::new()
            .time(
                "set",
                Some(Time {
                    seconds: Some(1_700_000_000),
                    nanos: Some(5),
                }),
            )
            .and_then(|o| o.time("empty", Some(Time::default())))
            .and_then(|o| {
                o.time(
                    "zero",
                    Some(Time {
                        seconds: Some(GO_ZERO_TIME_SECONDS),
                        nanos: None,
                    }),
                )
            })
            .map(Obj::done);
        assert_eq!(v, Ok(json!({"set": "2023-11-14T22:13:20Z"})));
    }

    #[test]
    fn int_or_string_follows_its_type_tag() {
        let int = IntOrString {
            r#type: Some(0),
            int_val: Some(8080),
            str_val: Some(String::new()),
        };
        let name = IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: Some("http".into()),
        };
        let zero = IntOrString {
            r#type: Some(0),
            int_val: Some(0),
            str_val: Some(String::new()),
        };
        let v = Obj::new()
            .int_or_string("a", Some(int))
            .and_then(|o| o.int_or_string("b", Some(name)))
            .and_then(|o| o.int_or_string("c", Some(zero.clone())))
            .and_then(|o| o.opt_int_or_string("d", Some(zero)))
            .map(Obj::done);
        assert_eq!(v, Ok(json!({"a": 8080, "b": "http", "d": 0})));
        let bad = IntOrString {
            r#type: Some(7),
            ..Default::default()
        };
        assert!(matches!(
            Obj::new().int_or_string("port", Some(bad)),
            Err(FieldError { ref path, problem: Problem::Invalid(_) }) if path == "port"
        ));
    }

    #[test]
    fn zero_message_check_sees_through_go_encoded_empty_structs() {
        // What Go writes for an empty status: empty strings, zero ints and
        // an empty nested message.
        assert!(is_zero_message(&[
            0x0a, 0x00, 0x10, 0x00, 0x1a, 0x02, 0x08, 0x00
        ]));
        assert!(is_zero_message(&[]));
        assert!(!is_zero_message(&[0x0a, 0x01, b'x']));
        assert!(!is_zero_message(&[0x10, 0x01]));
        // Truncated input is not zero.
        assert!(!is_zero_message(&[0x0a, 0x05]));
    }

    #[test]
    fn bytes_map_is_base64_like_the_json_form() {
        let v = Obj::new()
            .bytes_map("data", BTreeMap::from([("k".to_string(), b"hi".to_vec())]))
            .done();
        assert_eq!(v, json!({"data": {"k": "aGk="}}));
    }
}
