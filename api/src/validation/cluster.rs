//! Validation of the cluster-level kinds: Namespace, Node, Event,
//! ServiceAccount and Lease.

use std::collections::BTreeSet;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, ObjectReference, ServiceAccount};

use super::field::{Path, invalid_each, nonnegative, positive};
use super::meta::validate_finalizers;
use super::names;
use super::selector::validate_label_key;
use crate::error::FieldError;

const TAINT_EFFECTS: &[&str] = &["NoExecute", "NoSchedule", "PreferNoSchedule"];
/// Events may only be recorded in their object's namespace, except that
/// events about cluster-scoped objects go to `default` (or nowhere).
const EVENT_NAMESPACES_FOR_CLUSTER_OBJECTS: &[&str] = &["", "default"];

pub fn namespace(obj: &Namespace, _old: Option<&Namespace>) -> Vec<FieldError> {
    let finalizers = obj.spec.as_ref().and_then(|s| s.finalizers.as_deref());
    validate_finalizers(finalizers, &Path::new("spec").child("finalizers"))
}

pub fn node(obj: &Node, old: Option<&Node>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let path = Path::new("spec");
    let Some(spec) = obj.spec.as_ref() else {
        return errors;
    };
    let mut seen = BTreeSet::new();
    for (i, taint) in spec.taints.iter().flatten().enumerate() {
        let p = path.child("taints").index(i);
        errors.extend(validate_label_key(&taint.key, &p.child("key")));
        let value = taint.value.as_deref().unwrap_or_default();
        errors.extend(invalid_each(
            &p.child("value"),
            value,
            names::is_valid_label_value(value),
        ));
        if taint.effect.is_empty() {
            errors.push(FieldError::required(p.child("effect")));
        } else if !TAINT_EFFECTS.contains(&taint.effect.as_str()) {
            errors.push(FieldError::not_supported(
                p.child("effect"),
                &taint.effect,
                TAINT_EFFECTS,
            ));
        }
        if !seen.insert((taint.key.as_str(), taint.effect.as_str())) {
            errors.push(FieldError::duplicate(
                &p,
                format!("{}:{}", taint.key, taint.effect),
            ));
        }
    }
    for (i, cidr) in spec.pod_cidrs.iter().flatten().enumerate() {
        if !is_cidr(cidr) {
            errors.push(FieldError::invalid(
                path.child("podCIDRs").index(i),
                cidr,
                "must be a valid CIDR",
            ));
        }
    }
    if let Some(old_spec) = old.and_then(|o| o.spec.as_ref()) {
        // The pod CIDR and provider ID are set once, by whoever registers the node.
        let set_once = [
            ("podCIDR", &spec.pod_cidr, &old_spec.pod_cidr),
            ("providerID", &spec.provider_id, &old_spec.provider_id),
        ];
        for (field, new, old) in set_once {
            let old = old.as_deref().unwrap_or_default();
            if !old.is_empty() && new.as_deref().unwrap_or_default() != old {
                errors.push(FieldError::forbidden(
                    path.child(field),
                    format!("node updates may not change {field} except from \"\" to valid"),
                ));
            }
        }
    }
    errors
}

fn is_cidr(value: &str) -> bool {
    let Some((ip, bits)) = value.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn is_empty_reference(r: &ObjectReference) -> bool {
    *r == ObjectReference::default()
}

/// Events name the object they are about, in that object's namespace.
/// Events with an `eventTime` (the events.k8s.io style) also need a
/// reporting component, instance, action and reason, and may not change.
pub fn event(obj: &Event, old: Option<&Event>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let involved = &obj.involved_object;
    let involved_path = Path::new("involvedObject");
    if is_empty_reference(involved) {
        errors.push(FieldError::required(&involved_path));
    }
    let event_ns = obj.metadata.namespace.as_deref().unwrap_or_default();
    let object_ns = involved.namespace.as_deref().unwrap_or_default();
    let namespace_ok = if object_ns.is_empty() {
        let allowed: &[&str] = if obj.event_time.is_some() {
            &["", "default", "kube-system"]
        } else {
            EVENT_NAMESPACES_FOR_CLUSTER_OBJECTS
        };
        allowed.contains(&event_ns)
    } else {
        event_ns == object_ns
    };
    if !namespace_ok {
        errors.push(FieldError::invalid(
            involved_path.child("namespace"),
            object_ns,
            "does not match event.namespace",
        ));
    }
    if obj.event_time.is_some() {
        for (field, value) in [
            ("reportingComponent", &obj.reporting_component),
            ("reportingInstance", &obj.reporting_instance),
            ("action", &obj.action),
            ("reason", &obj.reason),
        ] {
            if value.as_deref().unwrap_or_default().is_empty() {
                errors.push(FieldError::required(field));
            }
        }
        if let Some(component) = obj.reporting_component.as_deref().filter(|c| !c.is_empty()) {
            errors.extend(invalid_each(
                &Path::new("reportingComponent"),
                component,
                names::is_qualified_name(component),
            ));
        }
        if let Some(ty) = obj.type_.as_deref().filter(|t| !t.is_empty())
            && ty != "Normal"
            && ty != "Warning"
        {
            errors.push(FieldError::not_supported(
                "type",
                ty,
                &["Normal", "Warning"],
            ));
        }
        if let Some(old) = old {
            let fixed = [
                ("involvedObject", obj.involved_object != old.involved_object),
                ("reason", obj.reason != old.reason),
                ("message", obj.message != old.message),
                ("source", obj.source != old.source),
                ("firstTimestamp", obj.first_timestamp != old.first_timestamp),
                ("lastTimestamp", obj.last_timestamp != old.last_timestamp),
                ("count", obj.count != old.count),
                (
                    "reportingComponent",
                    obj.reporting_component != old.reporting_component,
                ),
                ("type", obj.type_ != old.type_),
            ];
            for (field, _) in fixed.iter().filter(|(_, changed)| *changed) {
                errors.push(FieldError::immutable(*field));
            }
        }
    }
    errors
}

pub fn service_account(obj: &ServiceAccount, _old: Option<&ServiceAccount>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, secret) in obj.image_pull_secrets.iter().flatten().enumerate() {
        if secret.name.is_empty() {
            errors.push(FieldError::required(
                Path::new("imagePullSecrets").index(i).child("name"),
            ));
        }
    }
    errors
}

pub fn lease(obj: &Lease, _old: Option<&Lease>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(spec) = obj.spec.as_ref() else {
        return errors;
    };
    let path = Path::new("spec");
    positive(
        &mut errors,
        &path.child("leaseDurationSeconds"),
        spec.lease_duration_seconds.map(i64::from),
    );
    nonnegative(
        &mut errors,
        &path.child("leaseTransitions"),
        spec.lease_transitions.map(i64::from),
    );
    if spec.preferred_holder.is_some() && spec.strategy.is_none() {
        errors.push(FieldError::forbidden(
            path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::{NamespaceSpec, NodeSpec, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

    use super::*;
    use crate::validation::testing::fields;

    fn event_in(ns: &str, object_ns: Option<&str>) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some("e".into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some("Pod".into()),
                name: Some("web".into()),
                namespace: object_ns.map(Into::into),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn event_namespace_must_match_its_object() {
        assert_eq!(event(&event_in("team", Some("team")), None), Vec::new());
        assert_eq!(
            fields(&event(&event_in("team", Some("other")), None)),
            ["involvedObject.namespace"]
        );
        assert_eq!(event(&event_in("default", None), None), Vec::new());
        assert_eq!(
            fields(&event(&event_in("team", None), None)),
            ["involvedObject.namespace"]
        );
    }

    #[test]
    fn event_needs_an_involved_object() {
        let mut e = event_in("default", None);
        e.involved_object = ObjectReference::default();
        assert_eq!(fields(&event(&e, None)), ["involvedObject"]);
    }

    #[test]
    fn new_style_events_need_reporting_fields_and_are_immutable() {
        let mut e = event_in("team", Some("team"));
        e.event_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(
            fields(&event(&e, None)),
            [
                "reportingComponent",
                "reportingInstance",
                "action",
                "reason"
            ]
        );
        e.reporting_component = Some("wasmpod/scheduler".into());
        e.reporting_instance = Some("node-1".into());
        e.action = Some("Binding".into());
        e.reason = Some("Scheduled".into());
        assert_eq!(event(&e, None), Vec::new());
        let mut changed = e.clone();
        changed.reason = Some("Other".into());
        assert_eq!(fields(&event(&changed, Some(&e))), ["reason"]);
    }

    #[test]
    fn namespace_finalizers_are_checked() {
        let ns = Namespace {
            spec: Some(NamespaceSpec {
                finalizers: Some(vec!["kubernetes".into(), "custom".into()]),
            }),
            ..Default::default()
        };
        assert_eq!(fields(&namespace(&ns, None)), ["spec.finalizers"]);
    }

    #[test]
    fn node_taints_are_valid_and_unique() {
        let taint = |key: &str, effect: &str| Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        };
        let n = Node {
            spec: Some(NodeSpec {
                taints: Some(vec![
                    taint("a", "NoSchedule"),
                    taint("a", "NoSchedule"),
                    taint("b", "Sometimes"),
                    taint("", "NoExecute"),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        // An empty key is both empty and not a qualified name.
        assert_eq!(
            fields(&node(&n, None)),
            [
                "spec.taints[1]",
                "spec.taints[2].effect",
                "spec.taints[3].key",
                "spec.taints[3].key"
            ]
        );
    }

    #[test]
    fn node_pod_cidr_is_set_once() {
        let with_cidr = |c: Option<&str>| Node {
            spec: Some(NodeSpec {
                pod_cidr: c.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            node(&with_cidr(Some("10.244.1.0/24")), Some(&with_cidr(None))),
            Vec::new()
        );
        assert_eq!(
            fields(&node(
                &with_cidr(Some("10.244.2.0/24")),
                Some(&with_cidr(Some("10.244.1.0/24")))
            )),
            ["spec.podCIDR"]
        );
    }

    #[test]
    fn lease_duration_must_be_positive() {
        let l = Lease {
            spec: Some(LeaseSpec {
                lease_duration_seconds: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(fields(&lease(&l, None)), ["spec.leaseDurationSeconds"]);
        let l = Lease {
            spec: Some(LeaseSpec {
                lease_duration_seconds: Some(15),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(lease(&l, None), Vec::new());
    }
}
