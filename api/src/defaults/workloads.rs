//! Defaults of the replicated workloads: Deployment, ReplicaSet,
//! StatefulSet, DaemonSet (`apps/v1`) and ReplicationController (`v1`).

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetUpdateStrategy, Deployment, DeploymentStrategy, ReplicaSet,
    RollingUpdateDaemonSet, RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::core::persistent_volume_claim;
use super::pod::pod_template;

pub fn deployment(obj: &mut Deployment) {
    let Some(spec) = obj.spec.as_mut() else {
        return;
    };
    spec.replicas.get_or_insert(1);
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    let ty = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
    if ty == "RollingUpdate" {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        rolling
            .max_unavailable
            .get_or_insert_with(|| IntOrString::String("25%".into()));
        rolling
            .max_surge
            .get_or_insert_with(|| IntOrString::String("25%".into()));
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    pod_template(&mut spec.template);
}

pub fn replica_set(obj: &mut ReplicaSet) {
    let Some(spec) = obj.spec.as_mut() else {
        return;
    };
    spec.replicas.get_or_insert(1);
    if let Some(template) = spec.template.as_mut() {
        pod_template(template);
    }
}

pub fn stateful_set(obj: &mut StatefulSet) {
    let Some(spec) = obj.spec.as_mut() else {
        return;
    };
    spec.pod_management_policy
        .get_or_insert_with(|| "OrderedReady".into());
    let strategy = spec
        .update_strategy
        .get_or_insert_with(StatefulSetUpdateStrategy::default);
    if strategy.type_.as_deref().unwrap_or_default().is_empty() {
        strategy.type_ = Some("RollingUpdate".into());
        strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
    }
    if strategy.type_.as_deref() == Some("RollingUpdate")
        && let Some(rolling) = strategy.rolling_update.as_mut()
    {
        rolling.partition.get_or_insert(0);
    }
    let retention = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    retention
        .when_deleted
        .get_or_insert_with(|| "Retain".into());
    retention.when_scaled.get_or_insert_with(|| "Retain".into());
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    for claim in spec.volume_claim_templates.iter_mut().flatten() {
        persistent_volume_claim(claim);
    }
    pod_template(&mut spec.template);
}

pub fn daemon_set(obj: &mut DaemonSet) {
    let Some(spec) = obj.spec.as_mut() else {
        return;
    };
    let strategy = spec
        .update_strategy
        .get_or_insert_with(DaemonSetUpdateStrategy::default);
    let ty = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
    if ty == "RollingUpdate" {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        rolling.max_unavailable.get_or_insert(IntOrString::Int(1));
        rolling.max_surge.get_or_insert(IntOrString::Int(0));
    }
    spec.revision_history_limit.get_or_insert(10);
    pod_template(&mut spec.template);
}

/// The selector and the object's own labels default to the template's labels.
pub fn replication_controller(obj: &mut ReplicationController) {
    let Some(spec) = obj.spec.as_mut() else {
        return;
    };
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    if let Some(labels) = template_labels {
        if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
            spec.selector = Some(labels.clone());
        }
        if obj.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
            obj.metadata.labels = Some(labels);
        }
    }
    spec.replicas.get_or_insert(1);
    if let Some(template) = spec.template.as_mut() {
        pod_template(template);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::apps::v1::{DaemonSetSpec, DeploymentSpec, StatefulSetSpec};
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaim, PodTemplateSpec, ReplicationControllerSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn template() -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(Default::default()),
        }
    }

    #[test]
    fn deployment_defaults_match_kubernetes() {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                template: template(),
                ..Default::default()
            }),
            ..Default::default()
        };
        deployment(&mut d);
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.revision_history_limit, Some(10));
        assert_eq!(spec.progress_deadline_seconds, Some(600));
        let strategy = spec.strategy.expect("strategy");
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        let rolling = strategy.rolling_update.expect("rollingUpdate");
        assert_eq!(rolling.max_surge, Some(IntOrString::String("25%".into())));
        assert_eq!(
            rolling.max_unavailable,
            Some(IntOrString::String("25%".into()))
        );
        assert_eq!(
            spec.template.spec.and_then(|s| s.restart_policy).as_deref(),
            Some("Always")
        );
    }

    #[test]
    fn recreate_deployments_get_no_rolling_update() {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                strategy: Some(DeploymentStrategy {
                    type_: Some("Recreate".into()),
                    rolling_update: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        deployment(&mut d);
        assert_eq!(
            d.spec
                .and_then(|s| s.strategy)
                .and_then(|s| s.rolling_update),
            None
        );
    }

    #[test]
    fn stateful_set_defaults_match_kubernetes() {
        let mut s = StatefulSet {
            spec: Some(StatefulSetSpec {
                volume_claim_templates: Some(vec![PersistentVolumeClaim::default()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        stateful_set(&mut s);
        let spec = s.spec.expect("spec");
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("OrderedReady"));
        assert_eq!(spec.revision_history_limit, Some(10));
        let strategy = spec.update_strategy.expect("strategy");
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        assert_eq!(strategy.rolling_update.and_then(|r| r.partition), Some(0));
        let retention = spec
            .persistent_volume_claim_retention_policy
            .expect("retention");
        assert_eq!(
            (
                retention.when_deleted.as_deref(),
                retention.when_scaled.as_deref()
            ),
            (Some("Retain"), Some("Retain"))
        );
        let claim = &spec.volume_claim_templates.expect("claims")[0];
        assert_eq!(
            claim.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Pending")
        );
    }

    #[test]
    fn daemon_set_defaults_match_kubernetes() {
        let mut d = DaemonSet {
            spec: Some(DaemonSetSpec::default()),
            ..Default::default()
        };
        daemon_set(&mut d);
        let spec = d.spec.expect("spec");
        assert_eq!(spec.revision_history_limit, Some(10));
        let rolling = spec
            .update_strategy
            .and_then(|s| s.rolling_update)
            .expect("rollingUpdate");
        assert_eq!(
            (rolling.max_unavailable, rolling.max_surge),
            (Some(IntOrString::Int(1)), Some(IntOrString::Int(0)))
        );
    }

    #[test]
    fn replication_controller_selector_defaults_to_template_labels() {
        let mut rc = ReplicationController {
            spec: Some(ReplicationControllerSpec {
                template: Some(template()),
                ..Default::default()
            }),
            ..Default::default()
        };
        replication_controller(&mut rc);
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert_eq!(rc.metadata.labels.as_ref(), Some(&labels));
        let spec = rc.spec.expect("spec");
        assert_eq!(spec.selector, Some(labels));
        assert_eq!(spec.replicas, Some(1));
    }

    #[test]
    fn replica_set_defaults_replicas() {
        let mut rs = ReplicaSet {
            spec: Some(Default::default()),
            ..Default::default()
        };
        replica_set(&mut rs);
        assert_eq!(rs.spec.and_then(|s| s.replicas), Some(1));
    }
}
