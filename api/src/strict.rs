//! Strict decoding: the unknown and duplicate fields of a request body.
use serde_json::Value;

pub fn unknown_fields<T: serde::de::DeserializeOwned>(value: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let _: Result<T, _> = serde_ignored::deserialize(value.clone(), |path| unknown.push(path.to_string()));
    unknown
}
