//! Validation of the replicated workloads: Deployment, ReplicaSet,
//! DaemonSet and ReplicationController.

use k8s_openapi::api::apps::v1::{
    DaemonSet, Deployment, ReplicaSet, RollingUpdateDaemonSet, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::controller::{
    SELECTOR_MISMATCH, display, int_or_percent_value, labels_display, not_more_than_100_percent,
    template_labels, validate_int_or_percent, validate_long_running_template,
    validate_selector_for_template,
};
use super::field::{Path, nonnegative, one_of, required_because};
use super::selector::{self, validate_labels};
use crate::error::FieldError;

fn validate_rolling_update_deployment(
    r: &RollingUpdateDeployment,
    path: &Path,
    errors: &mut Vec<FieldError>,
) {
    let unavailable = path.child("maxUnavailable");
    validate_int_or_percent(r.max_unavailable.as_ref(), &unavailable, errors);
    validate_int_or_percent(r.max_surge.as_ref(), &path.child("maxSurge"), errors);
    let zero = |v: Option<&IntOrString>| v.is_none_or(|v| int_or_percent_value(v) == 0);
    if zero(r.max_unavailable.as_ref()) && zero(r.max_surge.as_ref()) {
        errors.push(FieldError::invalid(
            &unavailable,
            display(r.max_unavailable.as_ref()),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    not_more_than_100_percent(r.max_unavailable.as_ref(), &unavailable, errors);
}

fn validate_rolling_update_daemon_set(
    r: &RollingUpdateDaemonSet,
    path: &Path,
    errors: &mut Vec<FieldError>,
) {
    let unavailable = path.child("maxUnavailable");
    let surge = path.child("maxSurge");
    validate_int_or_percent(r.max_unavailable.as_ref(), &unavailable, errors);
    validate_int_or_percent(r.max_surge.as_ref(), &surge, errors);
    not_more_than_100_percent(r.max_unavailable.as_ref(), &unavailable, errors);
    not_more_than_100_percent(r.max_surge.as_ref(), &surge, errors);
    let has_unavailable = r
        .max_unavailable
        .as_ref()
        .is_some_and(|v| int_or_percent_value(v) != 0);
    let has_surge = r
        .max_surge
        .as_ref()
        .is_some_and(|v| int_or_percent_value(v) != 0);
    match (has_unavailable, has_surge) {
        (true, true) => errors.push(FieldError::invalid(
            &surge,
            display(r.max_surge.as_ref()),
            "may not be set when maxUnavailable is non-zero",
        )),
        (false, false) => errors.push(required_because(
            &unavailable,
            "cannot be 0 when maxSurge is 0",
        )),
        _ => {}
    }
}

fn immutable_selector<T: PartialEq>(new: &T, old: &T, errors: &mut Vec<FieldError>) {
    if new != old {
        errors.push(FieldError::immutable("spec.selector"));
    }
}

pub fn deployment(obj: &Deployment, old: Option<&Deployment>) -> Vec<FieldError> {
    let Some(spec) = obj.spec.as_ref() else {
        return vec![FieldError::required("spec")];
    };
    let path = Path::new("spec");
    let mut errors = Vec::new();
    nonnegative(
        &mut errors,
        &path.child("replicas"),
        spec.replicas.map(i64::from),
    );
    nonnegative(
        &mut errors,
        &path.child("minReadySeconds"),
        spec.min_ready_seconds.map(i64::from),
    );
    nonnegative(
        &mut errors,
        &path.child("revisionHistoryLimit"),
        spec.revision_history_limit.map(i64::from),
    );
    if let Some(deadline) = spec.progress_deadline_seconds {
        nonnegative(
            &mut errors,
            &path.child("progressDeadlineSeconds"),
            Some(i64::from(deadline)),
        );
        if deadline <= spec.min_ready_seconds.unwrap_or(0) {
            errors.push(FieldError::invalid(
                path.child("progressDeadlineSeconds"),
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errors.extend(validate_selector_for_template(
        &spec.selector,
        Some(&spec.template),
        &path,
        "Deployment",
    ));
    errors.extend(validate_long_running_template(
        Some(&spec.template),
        &path.child("template"),
        "Deployment",
        &[],
    ));

    let strategy_path = path.child("strategy");
    let strategy = spec.strategy.clone().unwrap_or_default();
    one_of(
        &mut errors,
        &strategy_path.child("type"),
        strategy.type_.as_deref(),
        &["Recreate", "RollingUpdate"],
    );
    match (strategy.type_.as_deref(), &strategy.rolling_update) {
        (Some("Recreate"), Some(_)) => errors.push(FieldError::forbidden(
            strategy_path.child("rollingUpdate"),
            "may not be specified when strategy `type` is 'Recreate'",
        )),
        (Some("RollingUpdate"), None) => {
            errors.push(FieldError::required(strategy_path.child("rollingUpdate")))
        }
        (Some("RollingUpdate"), Some(r)) => validate_rolling_update_deployment(
            r,
            &strategy_path.child("rollingUpdate"),
            &mut errors,
        ),
        _ => {}
    }
    if let Some(old_spec) = old.and_then(|o| o.spec.as_ref()) {
        immutable_selector(&spec.selector, &old_spec.selector, &mut errors);
    }
    errors
}

pub fn replica_set(obj: &ReplicaSet, old: Option<&ReplicaSet>) -> Vec<FieldError> {
    let Some(spec) = obj.spec.as_ref() else {
        return vec![FieldError::required("spec")];
    };
    let path = Path::new("spec");
    let mut errors = Vec::new();
    nonnegative(
        &mut errors,
        &path.child("replicas"),
        spec.replicas.map(i64::from),
    );
    nonnegative(
        &mut errors,
        &path.child("minReadySeconds"),
        spec.min_ready_seconds.map(i64::from),
    );
    errors.extend(validate_selector_for_template(
        &spec.selector,
        spec.template.as_ref(),
        &path,
        "ReplicaSet",
    ));
    errors.extend(validate_long_running_template(
        spec.template.as_ref(),
        &path.child("template"),
        "ReplicaSet",
        &[],
    ));
    if let Some(old_spec) = old.and_then(|o| o.spec.as_ref()) {
        immutable_selector(&spec.selector, &old_spec.selector, &mut errors);
    }
    errors
}

pub fn daemon_set(obj: &DaemonSet, old: Option<&DaemonSet>) -> Vec<FieldError> {
    let Some(spec) = obj.spec.as_ref() else {
        return vec![FieldError::required("spec")];
    };
    let path = Path::new("spec");
    let mut errors = Vec::new();
    nonnegative(
        &mut errors,
        &path.child("minReadySeconds"),
        spec.min_ready_seconds.map(i64::from),
    );
    nonnegative(
        &mut errors,
        &path.child("revisionHistoryLimit"),
        spec.revision_history_limit.map(i64::from),
    );
    errors.extend(validate_selector_for_template(
        &spec.selector,
        Some(&spec.template),
        &path,
        "DaemonSet",
    ));
    errors.extend(validate_long_running_template(
        Some(&spec.template),
        &path.child("template"),
        "DaemonSet",
        &[],
    ));

    let strategy_path = path.child("updateStrategy");
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    one_of(
        &mut errors,
        &strategy_path.child("type"),
        strategy.type_.as_deref(),
        &["OnDelete", "RollingUpdate"],
    );
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        match &strategy.rolling_update {
            None => errors.push(FieldError::required(strategy_path.child("rollingUpdate"))),
            Some(r) => validate_rolling_update_daemon_set(
                r,
                &strategy_path.child("rollingUpdate"),
                &mut errors,
            ),
        }
    }
    if let Some(old_spec) = old.and_then(|o| o.spec.as_ref()) {
        immutable_selector(&spec.selector, &old_spec.selector, &mut errors);
    }
    errors
}

/// ReplicationControllers select with a plain label map, which may change.
pub fn replication_controller(
    obj: &ReplicationController,
    _old: Option<&ReplicationController>,
) -> Vec<FieldError> {
    let Some(spec) = obj.spec.as_ref() else {
        return vec![FieldError::required("spec")];
    };
    let path = Path::new("spec");
    let mut errors = Vec::new();
    nonnegative(
        &mut errors,
        &path.child("replicas"),
        spec.replicas.map(i64::from),
    );
    nonnegative(
        &mut errors,
        &path.child("minReadySeconds"),
        spec.min_ready_seconds.map(i64::from),
    );
    let sel = spec.selector.as_ref().filter(|s| !s.is_empty());
    match sel {
        None => errors.push(FieldError::required(path.child("selector"))),
        Some(sel) => {
            errors.extend(validate_labels(Some(sel), &path.child("selector")));
            if let Some(t) = &spec.template
                && !selector::map_matches(sel, template_labels(t))
            {
                let p = path.child("template").child("metadata").child("labels");
                errors.push(FieldError::invalid(
                    p,
                    labels_display(template_labels(t)),
                    SELECTOR_MISMATCH,
                ));
            }
        }
    }
    errors.extend(validate_long_running_template(
        spec.template.as_ref(),
        &path.child("template"),
        "ReplicationController",
        &[],
    ));
    errors
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{
        DaemonSetSpec, DaemonSetUpdateStrategy, DeploymentSpec, DeploymentStrategy,
    };
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::api::core::v1::ReplicationControllerSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    use super::*;
    use crate::validation::testing::{fields, labels, template};

    fn deploy(selector_app: &str, template_app: &str) -> Deployment {
        let mut d = Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                selector: LabelSelector {
                    match_labels: labels(&[("app", selector_app)]),
                    match_expressions: None,
                },
                template: template(template_app),
                ..Default::default()
            }),
            status: None,
        };
        crate::defaults::deployment(&mut d);
        d
    }

    fn spec(d: &mut Deployment) -> &mut DeploymentSpec {
        d.spec.get_or_insert_with(Default::default)
    }

    fn pod_spec(d: &mut Deployment) -> &mut PodSpec {
        spec(d).template.spec.get_or_insert_with(Default::default)
    }

    #[test]
    fn defaulted_deployment_is_valid() {
        assert_eq!(deployment(&deploy("web", "web"), None), Vec::new());
    }

    #[test]
    fn deployment_selector_must_match_template_labels() {
        let errs = deployment(&deploy("web", "api"), None);
        assert_eq!(fields(&errs), ["spec.template.metadata.labels"]);
        assert!(
            errs[0]
                .message
                .ends_with("`selector` does not match template `labels`"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn deployment_selector_may_not_be_empty() {
        let mut d = deploy("web", "web");
        spec(&mut d).selector = LabelSelector::default();
        assert_eq!(fields(&deployment(&d, None)), ["spec.selector"]);
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old = deploy("web", "web");
        let mut new = deploy("web", "web");
        spec(&mut new).selector.match_labels = labels(&[("app", "web"), ("tier", "x")]);
        spec(&mut new).template.metadata = Some(ObjectMeta {
            labels: labels(&[("app", "web"), ("tier", "x")]),
            ..Default::default()
        });
        let errs = deployment(&new, Some(&old));
        assert_eq!(fields(&errs), ["spec.selector"]);
    }

    #[test]
    fn deployment_template_must_restart_always() {
        let mut d = deploy("web", "web");
        pod_spec(&mut d).restart_policy = Some("Never".into());
        assert_eq!(
            fields(&deployment(&d, None)),
            ["spec.template.spec.restartPolicy"]
        );
    }

    #[test]
    fn deployment_template_is_validated_as_a_pod_spec() {
        let mut d = deploy("web", "web");
        pod_spec(&mut d).containers[0].name = "Bad_Name".into();
        assert_eq!(
            fields(&deployment(&d, None)),
            ["spec.template.spec.containers[0].name"]
        );
    }

    #[test]
    fn deployment_rolling_update_may_not_be_all_zero() {
        let mut d = deploy("web", "web");
        spec(&mut d).strategy = Some(DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::Int(0)),
                max_unavailable: Some(IntOrString::String("0%".into())),
            }),
        });
        assert_eq!(
            fields(&deployment(&d, None)),
            ["spec.strategy.rollingUpdate.maxUnavailable"]
        );
        spec(&mut d).strategy = Some(DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::String("x".into())),
                max_unavailable: Some(IntOrString::String("150%".into())),
            }),
        });
        assert_eq!(
            fields(&deployment(&d, None)),
            [
                "spec.strategy.rollingUpdate.maxSurge",
                "spec.strategy.rollingUpdate.maxUnavailable"
            ]
        );
    }

    #[test]
    fn deployment_strategy_type_must_be_known() {
        let mut d = deploy("web", "web");
        spec(&mut d).strategy = Some(DeploymentStrategy {
            type_: Some("BlueGreen".into()),
            rolling_update: None,
        });
        assert_eq!(fields(&deployment(&d, None)), ["spec.strategy.type"]);
        spec(&mut d).strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: Some(RollingUpdateDeployment::default()),
        });
        assert_eq!(
            fields(&deployment(&d, None)),
            ["spec.strategy.rollingUpdate"]
        );
    }

    #[test]
    fn deployment_counts_are_nonnegative() {
        let mut d = deploy("web", "web");
        spec(&mut d).replicas = Some(-1);
        spec(&mut d).revision_history_limit = Some(-1);
        assert_eq!(
            fields(&deployment(&d, None)),
            ["spec.replicas", "spec.revisionHistoryLimit"]
        );
    }

    #[test]
    fn replica_set_needs_a_template() {
        let rs = ReplicaSet {
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                selector: LabelSelector {
                    match_labels: labels(&[("app", "web")]),
                    match_expressions: None,
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(fields(&replica_set(&rs, None)), ["spec.template"]);
    }

    #[test]
    fn daemon_set_rolling_update_needs_exactly_one_budget() {
        let mut ds = DaemonSet {
            spec: Some(DaemonSetSpec {
                selector: LabelSelector {
                    match_labels: labels(&[("app", "web")]),
                    match_expressions: None,
                },
                template: template("web"),
                ..Default::default()
            }),
            ..Default::default()
        };
        crate::defaults::daemon_set(&mut ds);
        assert_eq!(daemon_set(&ds, None), Vec::new());
        ds.spec.get_or_insert_with(Default::default).update_strategy =
            Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(1)),
                }),
            });
        assert_eq!(
            fields(&daemon_set(&ds, None)),
            ["spec.updateStrategy.rollingUpdate.maxSurge"]
        );
    }

    #[test]
    fn replication_controller_selector_must_match() {
        let mut rc = ReplicationController {
            spec: Some(ReplicationControllerSpec {
                selector: labels(&[("app", "other")]),
                template: Some(template("web")),
                ..Default::default()
            }),
            ..Default::default()
        };
        crate::defaults::replication_controller(&mut rc);
        assert_eq!(
            fields(&replication_controller(&rc, None)),
            ["spec.template.metadata.labels"]
        );
        rc.spec.get_or_insert_with(Default::default).selector = None;
        assert_eq!(
            fields(&replication_controller(&rc, None)),
            ["spec.selector"]
        );
    }
}
