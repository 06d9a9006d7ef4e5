//! What a Pod update may change (`ValidatePodUpdate`): container images,
//! a shorter or newly set `activeDeadlineSeconds`, added tolerations, a
//! negative grace period raised to 1, and removed scheduling gates.

use k8s_openapi::api::core::v1::{Pod, PodSpec, Toleration};

use super::validate_tolerations;
use crate::error::FieldError;
use crate::validation::diff::describe_changes;
use crate::validation::field::Path;

pub const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub fn validate_pod_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let default_spec = PodSpec::default();
    let new_spec = new.spec.as_ref().unwrap_or(&default_spec);
    let old_spec = old.spec.as_ref().unwrap_or(&default_spec);
    let path = Path::new("spec");
    let mut errors = Vec::new();

    let new_init = new_spec.init_containers.as_deref().unwrap_or_default();
    let old_init = old_spec.init_containers.as_deref().unwrap_or_default();
    if new_spec.containers.len() != old_spec.containers.len() {
        errors.push(FieldError::forbidden(
            path.child("containers"),
            "pod updates may not add or remove containers",
        ));
        return errors;
    }
    if new_init.len() != old_init.len() {
        errors.push(FieldError::forbidden(
            path.child("initContainers"),
            "pod updates may not add or remove containers",
        ));
        return errors;
    }

    let deadline = path.child("activeDeadlineSeconds");
    match (
        new_spec.active_deadline_seconds,
        old_spec.active_deadline_seconds,
    ) {
        (Some(n), Some(o)) if n > o => {
            errors.push(FieldError::invalid(
                &deadline,
                n,
                "must be less than or equal to previous value",
            ));
            return errors;
        }
        (None, Some(_)) => {
            errors.push(FieldError::invalid(
                &deadline,
                "nil",
                "must not update from a positive integer to nil value",
            ));
        }
        _ => {}
    }

    let new_tolerations = new_spec.tolerations.as_deref().unwrap_or_default();
    let old_tolerations = old_spec.tolerations.as_deref().unwrap_or_default();
    if !only_added_tolerations(new_tolerations, old_tolerations) {
        errors.push(FieldError::forbidden(
            path.child("tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    errors.extend(validate_tolerations(
        new_tolerations,
        &path.child("tolerations"),
    ));

    let old_gates = old_spec.scheduling_gates.as_deref().unwrap_or_default();
    for gate in new_spec.scheduling_gates.iter().flatten() {
        if !old_gates.contains(gate) {
            errors.push(FieldError::forbidden(
                path.child("schedulingGates"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    gate.name
                ),
            ));
        }
    }

    // Reset every field an update may change to its old value; whatever
    // still differs is a forbidden change.
    let mut munged = new_spec.clone();
    for (m, o) in munged.containers.iter_mut().zip(&old_spec.containers) {
        m.image.clone_from(&o.image);
    }
    for (m, o) in munged.init_containers.iter_mut().flatten().zip(old_init) {
        m.image.clone_from(&o.image);
    }
    munged.active_deadline_seconds = old_spec.active_deadline_seconds;
    munged.tolerations.clone_from(&old_spec.tolerations);
    munged
        .scheduling_gates
        .clone_from(&old_spec.scheduling_gates);
    if old_spec
        .termination_grace_period_seconds
        .is_some_and(|g| g < 0)
        && new_spec.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
    }
    if munged != *old_spec {
        let changes = describe_changes(old_spec, &munged, &path);
        errors.push(FieldError::forbidden(
            &path,
            format!("{POD_UPDATE_FORBIDDEN}\n{changes}"),
        ));
    }
    errors
}

/// Every old toleration must still be there; only its `tolerationSeconds` may change.
fn only_added_tolerations(new: &[Toleration], old: &[Toleration]) -> bool {
    old.iter().all(|o| {
        new.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            o == *n
        })
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerPort, PodSchedulingGate};

    use super::super::tests::valid_pod;
    use super::*;

    fn spec(pod: &mut Pod) -> &mut PodSpec {
        pod.spec.get_or_insert_with(Default::default)
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn pod_update_may_only_change_images() {
        let old = valid_pod();
        let mut new = old.clone();
        spec(&mut new).containers[0].image = Some("app:v2".into());
        assert!(validate_pod_update(&new, &old).is_empty());

        spec(&mut new).containers[0].ports = Some(vec![ContainerPort {
            container_port: 8080,
            ..Default::default()
        }]);
        let errs = validate_pod_update(&new, &old);
        assert_eq!(fields(&errs), ["spec"]);
        assert!(
            errs[0]
                .message
                .starts_with(&format!("Forbidden: {POD_UPDATE_FORBIDDEN}"))
        );
        assert!(
            errs[0].message.contains("spec.containers[0].ports"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn image_may_not_be_cleared() {
        let old = valid_pod();
        let mut new = old.clone();
        spec(&mut new).containers[0].image = None;
        assert_eq!(
            fields(&super::super::pod(&new, Some(&old))),
            ["spec.containers[0].image"]
        );
    }

    #[test]
    fn containers_may_not_be_added() {
        let old = valid_pod();
        let mut new = old.clone();
        let mut c = spec(&mut new).containers[0].clone();
        c.name = "two".into();
        spec(&mut new).containers.push(c);
        assert_eq!(
            fields(&validate_pod_update(&new, &old)),
            ["spec.containers"]
        );
    }

    #[test]
    fn active_deadline_may_only_be_set_or_shortened() {
        let mut old = valid_pod();
        let mut new = old.clone();
        spec(&mut new).active_deadline_seconds = Some(100);
        assert!(validate_pod_update(&new, &old).is_empty());
        spec(&mut old).active_deadline_seconds = Some(100);
        spec(&mut new).active_deadline_seconds = Some(50);
        assert!(validate_pod_update(&new, &old).is_empty());
        spec(&mut new).active_deadline_seconds = Some(200);
        assert_eq!(
            fields(&validate_pod_update(&new, &old)),
            ["spec.activeDeadlineSeconds"]
        );
        spec(&mut new).active_deadline_seconds = None;
        assert_eq!(
            fields(&validate_pod_update(&new, &old)),
            ["spec.activeDeadlineSeconds"]
        );
    }

    #[test]
    fn tolerations_may_only_be_added() {
        let t = |key: &str| Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        };
        let mut old = valid_pod();
        spec(&mut old).tolerations = Some(vec![t("a")]);
        let mut new = old.clone();
        spec(&mut new).tolerations = Some(vec![
            Toleration {
                toleration_seconds: Some(30),
                ..t("a")
            },
            t("b"),
        ]);
        assert!(validate_pod_update(&new, &old).is_empty());
        spec(&mut new).tolerations = Some(vec![t("b")]);
        assert_eq!(
            fields(&validate_pod_update(&new, &old)),
            ["spec.tolerations"]
        );
    }

    #[test]
    fn negative_grace_period_may_be_raised_to_one() {
        let mut old = valid_pod();
        spec(&mut old).termination_grace_period_seconds = Some(-5);
        let mut new = old.clone();
        spec(&mut new).termination_grace_period_seconds = Some(1);
        assert!(validate_pod_update(&new, &old).is_empty());
        spec(&mut new).termination_grace_period_seconds = Some(2);
        assert_eq!(fields(&validate_pod_update(&new, &old)), ["spec"]);
    }

    #[test]
    fn scheduling_gates_may_only_be_removed() {
        let gate = |n: &str| PodSchedulingGate { name: n.into() };
        let mut old = valid_pod();
        spec(&mut old).scheduling_gates = Some(vec![gate("a")]);
        let mut new = old.clone();
        spec(&mut new).scheduling_gates = None;
        assert!(validate_pod_update(&new, &old).is_empty());
        spec(&mut new).scheduling_gates = Some(vec![gate("b")]);
        assert_eq!(
            fields(&validate_pod_update(&new, &old)),
            ["spec.schedulingGates"]
        );
    }
}
