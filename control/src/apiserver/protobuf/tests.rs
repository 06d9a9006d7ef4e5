//! Builders of bodies as client-go encodes them, shared by the per-kind
//! tests, and the tests of the envelope and its failure modes.

use std::collections::BTreeMap;

use k8s_pb::api::{apps::v1 as apps, core::v1 as core};
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wasmpod_api::ApiError;
use wasmpod_api::registry::{ResourceType, by_kind};

use super::{MAGIC, decode};

pub(super) fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// ObjectMeta as Go writes it: every non-pointer field present, zero or not.
pub(super) fn go_meta(name: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

/// A Container as Go writes one that sets only a name, an image and ports.
pub(super) fn go_container(name: &str, image: &str, ports: &[i32]) -> core::Container {
    core::Container {
        name: s(name),
        image: s(image),
        working_dir: s(""),
        ports: ports
            .iter()
            .map(|&p| core::ContainerPort {
                name: s(""),
                host_port: Some(0),
                container_port: Some(p),
                protocol: s(""),
                host_ip: s(""),
            })
            .collect(),
        resources: Some(core::ResourceRequirements::default()),
        termination_message_path: s(""),
        termination_message_policy: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

/// A PodSpec as Go writes it around the given containers.
pub(super) fn go_pod_spec(containers: Vec<core::Container>, restart_policy: &str) -> core::PodSpec {
    core::PodSpec {
        containers,
        restart_policy: s(restart_policy),
        dns_policy: s(""),
        service_account_name: s(""),
        service_account: s(""),
        node_name: s(""),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: s(""),
        subdomain: s(""),
        scheduler_name: s(""),
        priority_class_name: s(""),
        ..Default::default()
    }
}

pub(super) fn go_template(
    labels: BTreeMap<String, String>,
    spec: core::PodSpec,
) -> core::PodTemplateSpec {
    core::PodTemplateSpec {
        metadata: Some(meta::ObjectMeta {
            labels,
            ..go_meta("")
        }),
        spec: Some(spec),
    }
}

/// The body client-go's protobuf serializer writes: the magic, then a
/// runtime.Unknown with typeMeta, raw, and empty contentEncoding and
/// contentType.
pub(super) fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: s(""),
        content_type: s(""),
    };
    [MAGIC, &unknown.encode_to_vec()].concat()
}

pub(super) fn resource(api_version: &str, kind: &str) -> &'static ResourceType {
    by_kind(api_version, kind)
        .unwrap_or_else(|| panic!("{api_version} {kind} is not in the registry"))
}

/// `v` read into its k8s-openapi type and written back. It equals `v` only
/// when every field name and value shape is one the served API version
/// knows: an unknown field would be dropped, a wrong shape fails.
pub(super) fn roundtrip<T: DeserializeOwned + Serialize>(v: &Value) -> Value {
    let typed: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    serde_json::to_value(typed).unwrap_or_else(|e| panic!("{e}"))
}

/// The outcome of decoding, with an error as its HTTP status and message.
pub(super) fn decoding(body: &[u8], expect: &ResourceType) -> Result<Value, (u16, String)> {
    decode(body, expect).map_err(|e: ApiError| (e.code(), e.to_string()))
}

/// Decodes `object` as client-go would send it and, when that succeeds,
/// checks that the result is a valid instance of the served type.
pub(super) fn decoded(
    api_version: &str,
    kind: &str,
    object: &impl Message,
) -> Result<Value, (u16, String)> {
    let result = decoding(
        &envelope(api_version, kind, object),
        resource(api_version, kind),
    );
    if let Ok(v) = &result {
        assert_eq!(
            &served_form(kind, v),
            v,
            "the decoded {kind} does not survive the served type"
        );
    }
    result
}

fn served_form(kind: &str, v: &Value) -> Value {
    use k8s_openapi::api::{apps::v1 as a, batch::v1 as b, core::v1 as c, rbac::v1 as r};
    match kind {
        "Namespace" => roundtrip::<c::Namespace>(v),
        "ConfigMap" => roundtrip::<c::ConfigMap>(v),
        "Secret" => roundtrip::<c::Secret>(v),
        "ServiceAccount" => roundtrip::<c::ServiceAccount>(v),
        "Service" => roundtrip::<c::Service>(v),
        "Pod" => roundtrip::<c::Pod>(v),
        "Deployment" => roundtrip::<a::Deployment>(v),
        "Job" => roundtrip::<b::Job>(v),
        "CronJob" => roundtrip::<b::CronJob>(v),
        "Role" => roundtrip::<r::Role>(v),
        "ClusterRole" => roundtrip::<r::ClusterRole>(v),
        "RoleBinding" => roundtrip::<r::RoleBinding>(v),
        "ClusterRoleBinding" => roundtrip::<r::ClusterRoleBinding>(v),
        other => panic!("no served type for {other}"),
    }
}

#[test]
fn envelope_helper_writes_the_bytes_client_go_writes() {
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: s("c"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let raw = cm.encode_to_vec();
    // The layout of runtime.Unknown.NestedMarshalTo: typeMeta (1), raw (2),
    // contentEncoding (3) and contentType (4), the last two empty.
    let type_meta = [&[0x0a, 2][..], b"v1", &[0x12, 9], b"ConfigMap"].concat();
    let unknown = [
        &[0x0a, type_meta.len() as u8][..],
        &type_meta,
        &[0x12, raw.len() as u8],
        &raw,
        &[0x1a, 0, 0x22, 0],
    ]
    .concat();
    let expected = [&b"k8s\0"[..], &unknown].concat();
    assert_eq!(envelope("v1", "ConfigMap", &cm), expected);
}

fn status_and_message(r: Result<Value, (u16, String)>) -> (u16, String) {
    match r {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e,
    }
}

#[test]
fn a_body_without_the_magic_is_a_bad_request() {
    let (code, msg) = status_and_message(decoding(
        br#"{"kind":"ConfigMap"}"#,
        resource("v1", "ConfigMap"),
    ));
    assert_eq!(code, 400);
    assert!(msg.contains("magic"), "{msg}");
}

#[test]
fn a_truncated_envelope_is_a_bad_request() {
    let mut body = envelope(
        "v1",
        "ConfigMap",
        &core::ConfigMap {
            metadata: Some(go_meta("c")),
            ..Default::default()
        },
    );
    body.truncate(body.len() - 8);
    let (code, msg) = status_and_message(decoding(&body, resource("v1", "ConfigMap")));
    assert_eq!(code, 400);
    assert!(msg.contains("envelope"), "{msg}");
}

#[test]
fn a_malformed_object_inside_a_valid_envelope_is_a_bad_request() {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("ConfigMap"),
        }),
        raw: Some(vec![0x0a, 0x7f, 0x01]),
        ..Default::default()
    };
    let body = [MAGIC, &unknown.encode_to_vec()].concat();
    let (code, msg) = status_and_message(decoding(&body, resource("v1", "ConfigMap")));
    assert_eq!(code, 400);
    assert!(msg.contains("malformed"), "{msg}");
}

#[test]
fn a_kind_or_version_other_than_the_endpoints_is_a_bad_request() {
    let cm = core::ConfigMap {
        metadata: Some(go_meta("c")),
        ..Default::default()
    };
    let (code, msg) = status_and_message(decoding(
        &envelope("v1", "ConfigMap", &cm),
        resource("v1", "Secret"),
    ));
    assert_eq!(
        (code, msg.contains("kind in the data (ConfigMap)")),
        (400, true),
        "{msg}"
    );
    let (code, msg) = status_and_message(decoding(
        &envelope("v2", "ConfigMap", &cm),
        resource("v1", "ConfigMap"),
    ));
    assert_eq!(
        (code, msg.contains("API version in the data (v2)")),
        (400, true),
        "{msg}"
    );
}

#[test]
fn a_missing_type_meta_is_taken_from_the_endpoint() {
    let cm = core::ConfigMap {
        metadata: Some(go_meta("c")),
        ..Default::default()
    };
    let unknown = Unknown {
        raw: Some(cm.encode_to_vec()),
        ..Default::default()
    };
    let body = [MAGIC, &unknown.encode_to_vec()].concat();
    assert_eq!(
        decoding(&body, resource("v1", "ConfigMap")),
        Ok(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}))
    );
}

#[test]
fn an_unsupported_kind_is_415_and_points_to_json() {
    let lease = k8s_pb::api::coordination::v1::Lease {
        metadata: Some(go_meta("l")),
        spec: None,
    };
    let (code, msg) = status_and_message(decoded("coordination.k8s.io/v1", "Lease", &lease));
    assert_eq!(code, 415);
    assert!(
        msg.contains("accepted only for Namespace, ConfigMap"),
        "{msg}"
    );
    assert!(msg.contains("kubectl apply -f"), "{msg}");
}

#[test]
fn a_compressed_or_json_wrapped_object_is_415() {
    let cm = core::ConfigMap {
        metadata: Some(go_meta("c")),
        ..Default::default()
    };
    for (encoding, media) in [("gzip", ""), ("", "application/json")] {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: s("v1"),
                kind: s("ConfigMap"),
            }),
            raw: Some(cm.encode_to_vec()),
            content_encoding: s(encoding),
            content_type: s(media),
        };
        let body = [MAGIC, &unknown.encode_to_vec()].concat();
        let (code, _) = status_and_message(decoding(&body, resource("v1", "ConfigMap")));
        assert_eq!(code, 415);
    }
}

#[test]
fn an_unconvertible_field_is_415_naming_its_path() {
    let mut spec = go_pod_spec(vec![go_container("c", "x", &[])], "");
    spec.volumes = vec![core::Volume {
        name: s("disk"),
        volume_source: Some(core::VolumeSource {
            aws_elastic_block_store: Some(Default::default()),
            ..Default::default()
        }),
    }];
    let d = apps::Deployment {
        metadata: Some(go_meta("d")),
        spec: Some(apps::DeploymentSpec {
            template: Some(go_template(BTreeMap::new(), spec)),
            ..Default::default()
        }),
        status: None,
    };
    let (code, msg) = status_and_message(decoded("apps/v1", "Deployment", &d));
    assert_eq!(code, 415);
    assert!(
        msg.contains("spec.template.spec.volumes[0].awsElasticBlockStore"),
        "{msg}"
    );
    assert!(msg.contains("JSON"), "{msg}");
}

#[test]
fn a_pod_with_status_set_is_refused_rather_than_stripped() {
    let pod = core::Pod {
        metadata: Some(go_meta("p")),
        spec: Some(go_pod_spec(vec![go_container("c", "x", &[])], "")),
        status: Some(core::PodStatus {
            phase: s("Running"),
            ..Default::default()
        }),
    };
    let (code, msg) = status_and_message(decoded("v1", "Pod", &pod));
    assert_eq!(code, 415);
    assert!(msg.contains("field status"), "{msg}");
}
