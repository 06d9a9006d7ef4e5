//! Validation of ConfigMaps and Secrets: key syntax, size, immutability,
//! and the keys each well-known Secret type must carry.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::field::{Path, invalid_each};
use super::names;
use crate::error::FieldError;

/// Largest total size of a ConfigMap's or Secret's data.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const IMMUTABLE_DETAIL: &str = "field is immutable when `immutable` is set";

fn validate_keys<'a>(keys: impl Iterator<Item = &'a String>, path: &Path) -> Vec<FieldError> {
    keys.flat_map(|k| invalid_each(&path.key(k), k, names::is_config_map_key(k)))
        .collect()
}

/// Once `immutable: true` is stored, the flag stays and so does the data;
/// `changed` names each data field and whether the update changes it.
fn validate_immutable(
    new_immutable: Option<bool>,
    old_immutable: Option<bool>,
    changed: &[(&str, bool)],
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if old_immutable != Some(true) {
        return errors;
    }
    if new_immutable != Some(true) {
        errors.push(FieldError::forbidden("immutable", IMMUTABLE_DETAIL));
    }
    for (name, _) in changed.iter().filter(|(_, changed)| *changed) {
        errors.push(FieldError::forbidden(*name, IMMUTABLE_DETAIL));
    }
    errors
}

pub fn config_map(obj: &ConfigMap, old: Option<&ConfigMap>) -> Vec<FieldError> {
    let empty_data = BTreeMap::new();
    let empty_binary = BTreeMap::new();
    let data = obj.data.as_ref().unwrap_or(&empty_data);
    let binary = obj.binary_data.as_ref().unwrap_or(&empty_binary);
    let mut errors = validate_keys(data.keys(), &Path::new("data"));
    errors.extend(validate_keys(binary.keys(), &Path::new("binaryData")));
    for key in data.keys().filter(|k| binary.contains_key(*k)) {
        errors.push(FieldError::invalid(
            Path::new("data").key(key),
            key,
            "duplicate of key present in binaryData",
        ));
    }
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        + binary
            .iter()
            .map(|(k, v)| k.len() + v.0.len())
            .sum::<usize>();
    if size > MAX_DATA_SIZE {
        errors.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
    if let Some(old) = old {
        errors.extend(validate_immutable(
            obj.immutable,
            old.immutable,
            &[
                ("data", obj.data != old.data),
                ("binaryData", obj.binary_data != old.binary_data),
            ],
        ));
    }
    errors
}

pub fn secret(obj: &Secret, old: Option<&Secret>) -> Vec<FieldError> {
    let empty = BTreeMap::new();
    let data = obj.data.as_ref().unwrap_or(&empty);
    let data_path = Path::new("data");
    let mut errors = validate_keys(data.keys(), &data_path);
    let size: usize = data.iter().map(|(k, v)| k.len() + v.0.len()).sum();
    if size > MAX_DATA_SIZE {
        errors.push(FieldError::too_long(&data_path, MAX_DATA_SIZE));
    }
    errors.extend(validate_secret_type(obj, data, &data_path));
    if let Some(old) = old {
        if obj.type_ != old.type_ {
            errors.push(FieldError::immutable("type"));
        }
        errors.extend(validate_immutable(
            obj.immutable,
            old.immutable,
            &[("data", obj.data != old.data)],
        ));
    }
    errors
}

/// The keys each built-in Secret type requires (`ValidateSecret`).
fn validate_secret_type(
    obj: &Secret,
    data: &BTreeMap<String, ByteString>,
    data_path: &Path,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let require = |key: &str, errors: &mut Vec<FieldError>| {
        if !data.contains_key(key) {
            errors.push(FieldError::required(data_path.key(key)));
        }
    };
    let require_json = |key: &str, errors: &mut Vec<FieldError>| match data.get(key) {
        None => errors.push(FieldError::required(data_path.key(key))),
        Some(raw) => {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&raw.0) {
                errors.push(FieldError::invalid(
                    data_path.key(key),
                    "<secret contents redacted>",
                    e,
                ));
            }
        }
    };
    match obj.type_.as_deref().unwrap_or_default() {
        "kubernetes.io/service-account-token" => {
            let named = obj
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SERVICE_ACCOUNT_NAME_ANNOTATION))
                .is_some_and(|n| !n.is_empty());
            if !named {
                errors.push(FieldError::required(Path::new("metadata").child("annotations").key(SERVICE_ACCOUNT_NAME_ANNOTATION)));
            }
        }
        "kubernetes.io/dockercfg" => require_json(".dockercfg", &mut errors),
        "kubernetes.io/dockerconfigjson" => require_json(".dockerconfigjson", &mut errors),
        "kubernetes.io/basic-auth"
            // Either credential alone is enough.
            if !data.contains_key("username") && !data.contains_key("password") => {
                require("username", &mut errors);
                require("password", &mut errors);
            }
        "kubernetes.io/ssh-auth" => require("ssh-privatekey", &mut errors),
        "kubernetes.io/tls" => {
            require("tls.crt", &mut errors);
            require("tls.key", &mut errors);
        }
        "" => errors.push(FieldError::required("type")),
        _ => {}
    }
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::validation::testing::fields;

    fn cm(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn secret_of(ty: &str, keys: &[(&str, &[u8])]) -> Secret {
        let mut s = Secret {
            type_: Some(ty.into()),
            data: Some(
                keys.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        crate::defaults::secret(&mut s);
        s
    }

    #[test]
    fn config_map_keys_must_be_valid() {
        let errs = config_map(&cm(&[("good.key", "1"), ("bad/key", "2")]), None);
        assert_eq!(fields(&errs), ["data[bad/key]"]);
    }

    #[test]
    fn config_map_key_may_not_be_in_both_maps() {
        let mut c = cm(&[("k", "1")]);
        c.binary_data = Some([("k".to_string(), ByteString(vec![1]))].into());
        assert_eq!(fields(&config_map(&c, None)), ["data[k]"]);
    }

    #[test]
    fn config_map_size_is_limited() {
        let big = "x".repeat(MAX_DATA_SIZE);
        let errs = config_map(&cm(&[("big", &big)]), None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, "FieldValueTooLong");
    }

    #[test]
    fn immutable_config_map_keeps_its_data_and_flag() {
        let mut old = cm(&[("k", "1")]);
        old.immutable = Some(true);
        let mut new = old.clone();
        assert_eq!(config_map(&new, Some(&old)), Vec::new());
        new.data = Some([("k".to_string(), "2".to_string())].into());
        new.immutable = None;
        assert_eq!(fields(&config_map(&new, Some(&old))), ["immutable", "data"]);
        // A mutable config map may change freely.
        let mutable = cm(&[("k", "1")]);
        assert_eq!(config_map(&cm(&[("k", "2")]), Some(&mutable)), Vec::new());
    }

    #[test]
    fn secret_types_require_their_keys() {
        assert_eq!(secret(&secret_of("Opaque", &[]), None), Vec::new());
        assert_eq!(
            fields(&secret(
                &secret_of("kubernetes.io/tls", &[("tls.crt", b"c")]),
                None
            )),
            ["data[tls.key]"]
        );
        assert_eq!(
            fields(&secret(&secret_of("kubernetes.io/ssh-auth", &[]), None)),
            ["data[ssh-privatekey]"]
        );
        assert_eq!(
            secret(
                &secret_of("kubernetes.io/basic-auth", &[("password", b"p")]),
                None
            ),
            Vec::new()
        );
        assert_eq!(
            fields(&secret(&secret_of("kubernetes.io/basic-auth", &[]), None)),
            ["data[username]", "data[password]"]
        );
        assert_eq!(
            fields(&secret(
                &secret_of(
                    "kubernetes.io/dockerconfigjson",
                    &[(".dockerconfigjson", b"{nope")]
                ),
                None
            )),
            ["data[.dockerconfigjson]"]
        );
        assert_eq!(
            fields(&secret(
                &secret_of("kubernetes.io/service-account-token", &[]),
                None
            )),
            ["metadata.annotations[kubernetes.io/service-account.name]"]
        );
        let mut named = secret_of("kubernetes.io/service-account-token", &[]);
        named.metadata = ObjectMeta {
            annotations: Some(
                [(
                    SERVICE_ACCOUNT_NAME_ANNOTATION.to_string(),
                    "default".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        };
        assert_eq!(secret(&named, None), Vec::new());
    }

    #[test]
    fn secret_type_is_immutable() {
        let old = secret_of("Opaque", &[]);
        let new = secret_of("kubernetes.io/ssh-auth", &[("ssh-privatekey", b"k")]);
        assert_eq!(fields(&secret(&new, Some(&old))), ["type"]);
    }

    #[test]
    fn immutable_secret_keeps_its_data() {
        let mut old = secret_of("Opaque", &[("a", b"1")]);
        old.immutable = Some(true);
        let mut new = secret_of("Opaque", &[("a", b"2")]);
        new.immutable = Some(true);
        assert_eq!(fields(&secret(&new, Some(&old))), ["data"]);
    }
}
