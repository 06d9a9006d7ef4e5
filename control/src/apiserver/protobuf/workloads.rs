//! Conversions of the workload kinds kubectl creates from flags:
//! apps/v1 Deployment, batch/v1 Job and batch/v1 CronJob.

use k8s_pb::api::{apps::v1 as apps, batch::v1 as batch};

use super::convert::{Conv, Obj, reject_nonzero};
use super::meta::{label_selector, object_meta};
use super::pod::pod_template_spec;

pub(super) fn deployment(d: apps::Deployment) -> Conv {
    let apps::Deployment {
        metadata,
        spec,
        status,
    } = d;
    // Status is the controller's to set.
    reject_nonzero("status", &status)?;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .msg("spec", spec, deployment_spec)?
        .done())
}

fn deployment_spec(s: apps::DeploymentSpec) -> Conv {
    let apps::DeploymentSpec {
        replicas,
        selector,
        template,
        strategy,
        min_ready_seconds,
        revision_history_limit,
        paused,
        progress_deadline_seconds,
    } = s;
    Ok(Obj::new()
        .opt_int("replicas", replicas)
        .ptr("selector", selector, label_selector)?
        // Required, so kept even when empty for validation to report.
        .ptr("template", template, pod_template_spec)?
        .msg("strategy", strategy, |s| {
            let apps::DeploymentStrategy {
                r#type,
                rolling_update,
            } = s;
            Ok(Obj::new()
                .str("type", r#type)
                .ptr("rollingUpdate", rolling_update, |r| {
                    let apps::RollingUpdateDeployment {
                        max_unavailable,
                        max_surge,
                    } = r;
                    Ok(Obj::new()
                        .opt_int_or_string("maxUnavailable", max_unavailable)?
                        .opt_int_or_string("maxSurge", max_surge)?
                        .done())
                })?
                .done())
        })?
        .int("minReadySeconds", min_ready_seconds)
        .opt_int("revisionHistoryLimit", revision_history_limit)
        .flag("paused", paused)
        .opt_int("progressDeadlineSeconds", progress_deadline_seconds)
        .done())
}

pub(super) fn job(j: batch::Job) -> Conv {
    let batch::Job {
        metadata,
        spec,
        status,
    } = j;
    // Status is the controller's to set.
    reject_nonzero("status", &status)?;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .msg("spec", spec, job_spec)?
        .done())
}

fn job_spec(s: batch::JobSpec) -> Conv {
    let batch::JobSpec {
        parallelism,
        completions,
        active_deadline_seconds,
        pod_failure_policy,
        success_policy,
        backoff_limit,
        backoff_limit_per_index,
        max_failed_indexes,
        selector,
        manual_selector,
        template,
        ttl_seconds_after_finished,
        completion_mode,
        suspend,
        pod_replacement_policy,
        managed_by,
    } = s;
    Ok(Obj::new()
        .opt_int("parallelism", parallelism)
        .opt_int("completions", completions)
        .opt_int("activeDeadlineSeconds", active_deadline_seconds)
        .ptr(
            "podFailurePolicy",
            pod_failure_policy,
            pod_failure_policy_json,
        )?
        .ptr("successPolicy", success_policy, |p| {
            let batch::SuccessPolicy { rules } = p;
            Ok(Obj::new()
                .list("rules", rules, |r| {
                    let batch::SuccessPolicyRule {
                        succeeded_indexes,
                        succeeded_count,
                    } = r;
                    Ok(Obj::new()
                        .opt_str("succeededIndexes", succeeded_indexes)
                        .opt_int("succeededCount", succeeded_count)
                        .done())
                })?
                .done())
        })?
        .opt_int("backoffLimit", backoff_limit)
        .opt_int("backoffLimitPerIndex", backoff_limit_per_index)
        .opt_int("maxFailedIndexes", max_failed_indexes)
        .ptr("selector", selector, label_selector)?
        .opt_bool("manualSelector", manual_selector)
        // Required, so kept even when empty for validation to report.
        .ptr("template", template, pod_template_spec)?
        .opt_int("ttlSecondsAfterFinished", ttl_seconds_after_finished)
        .opt_str("completionMode", completion_mode)
        .opt_bool("suspend", suspend)
        .opt_str("podReplacementPolicy", pod_replacement_policy)
        .opt_str("managedBy", managed_by)
        .done())
}

fn pod_failure_policy_json(p: batch::PodFailurePolicy) -> Conv {
    let batch::PodFailurePolicy { rules } = p;
    Ok(Obj::new()
        .list("rules", rules, |r| {
            let batch::PodFailurePolicyRule {
                action,
                on_exit_codes,
                on_pod_conditions,
            } = r;
            Ok(Obj::new()
                .str("action", action)
                .ptr("onExitCodes", on_exit_codes, |c| {
                    let batch::PodFailurePolicyOnExitCodesRequirement {
                        container_name,
                        operator,
                        values,
                    } = c;
                    Ok(Obj::new()
                        .opt_str("containerName", container_name)
                        .str("operator", operator)
                        .ints("values", values)
                        .done())
                })?
                .list("onPodConditions", on_pod_conditions, |c| {
                    let batch::PodFailurePolicyOnPodConditionsPattern { r#type, status } = c;
                    Ok(Obj::new().str("type", r#type).str("status", status).done())
                })?
                .done())
        })?
        .done())
}

pub(super) fn cron_job(c: batch::CronJob) -> Conv {
    let batch::CronJob {
        metadata,
        spec,
        status,
    } = c;
    // Status is the controller's to set.
    reject_nonzero("status", &status)?;
    Ok(Obj::new()
        .ptr("metadata", metadata, object_meta)?
        .msg("spec", spec, |s| {
            let batch::CronJobSpec {
                schedule,
                time_zone,
                starting_deadline_seconds,
                concurrency_policy,
                suspend,
                job_template,
                successful_jobs_history_limit,
                failed_jobs_history_limit,
            } = s;
            Ok(Obj::new()
                .str("schedule", schedule)
                .opt_str("timeZone", time_zone)
                .opt_int("startingDeadlineSeconds", starting_deadline_seconds)
                .str("concurrencyPolicy", concurrency_policy)
                .opt_bool("suspend", suspend)
                // Required, so kept even when empty for validation to report.
                .ptr("jobTemplate", job_template, |t| {
                    let batch::JobTemplateSpec { metadata, spec } = t;
                    Ok(Obj::new()
                        .msg("metadata", metadata, object_meta)?
                        .msg("spec", spec, job_spec)?
                        .done())
                })?
                .opt_int("successfulJobsHistoryLimit", successful_jobs_history_limit)
                .opt_int("failedJobsHistoryLimit", failed_jobs_history_limit)
                .done())
        })?
        .done())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_pb::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;

    use crate::apiserver::protobuf::tests::{
        decoded, go_container, go_meta, go_pod_spec, go_template, labels, s,
    };

    #[test]
    fn kubectl_create_deployment() {
        let app = labels(&[("app", "web")]);
        let d = apps::Deployment {
            metadata: Some(meta::ObjectMeta {
                labels: app.clone(),
                ..go_meta("web")
            }),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(2),
                selector: Some(meta::LabelSelector {
                    match_labels: app.clone(),
                    match_expressions: vec![],
                }),
                template: Some(go_template(
                    app,
                    go_pod_spec(vec![go_container("app", "file:///app.wasm", &[8080])], ""),
                )),
                strategy: Some(apps::DeploymentStrategy {
                    r#type: s(""),
                    rolling_update: None,
                }),
                min_ready_seconds: Some(0),
                paused: Some(false),
                ..Default::default()
            }),
            status: Some(apps::DeploymentStatus {
                observed_generation: Some(0),
                replicas: Some(0),
                updated_replicas: Some(0),
                ready_replicas: Some(0),
                available_replicas: Some(0),
                unavailable_replicas: Some(0),
                ..Default::default()
            }),
        };
        assert_eq!(
            decoded("apps/v1", "Deployment", &d),
            Ok(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "app", "image": "file:///app.wasm", "ports": [{"containerPort": 8080}]}]}
                    }
                }
            }))
        );
    }

    #[test]
    fn deployment_strategy_keeps_zero_max_unavailable_and_percent_surge() {
        let d = apps::Deployment {
            metadata: Some(go_meta("web")),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(0),
                selector: Some(meta::LabelSelector {
                    match_labels: BTreeMap::new(),
                    match_expressions: vec![meta::LabelSelectorRequirement {
                        key: s("tier"),
                        operator: s("Exists"),
                        values: vec![],
                    }],
                }),
                template: Some(core::PodTemplateSpec::default()),
                strategy: Some(apps::DeploymentStrategy {
                    r#type: s("RollingUpdate"),
                    rolling_update: Some(apps::RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString {
                            r#type: Some(0),
                            int_val: Some(0),
                            str_val: s(""),
                        }),
                        max_surge: Some(IntOrString {
                            r#type: Some(1),
                            int_val: Some(0),
                            str_val: s("25%"),
                        }),
                    }),
                }),
                min_ready_seconds: Some(5),
                revision_history_limit: Some(0),
                paused: Some(true),
                progress_deadline_seconds: Some(600),
            }),
            status: None,
        };
        assert_eq!(
            decoded("apps/v1", "Deployment", &d).map(|v| v["spec"].clone()),
            Ok(json!({
                "replicas": 0,
                "selector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
                "template": {},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                "minReadySeconds": 5,
                "revisionHistoryLimit": 0,
                "paused": true,
                "progressDeadlineSeconds": 600
            }))
        );
    }

    fn go_job_spec(image: &str) -> batch::JobSpec {
        batch::JobSpec {
            template: Some(go_template(
                BTreeMap::new(),
                go_pod_spec(vec![go_container("j", image, &[])], "Never"),
            )),
            ..Default::default()
        }
    }

    fn go_job_status() -> batch::JobStatus {
        batch::JobStatus {
            active: Some(0),
            succeeded: Some(0),
            failed: Some(0),
            completed_indexes: s(""),
            ..Default::default()
        }
    }

    #[test]
    fn kubectl_create_job() {
        let job = batch::Job {
            metadata: Some(go_meta("j")),
            spec: Some(go_job_spec("x")),
            status: Some(go_job_status()),
        };
        assert_eq!(
            decoded("batch/v1", "Job", &job),
            Ok(json!({
                "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                "spec": {"template": {"spec": {"containers": [{"name": "j", "image": "x"}], "restartPolicy": "Never"}}}
            }))
        );
    }

    #[test]
    fn job_spec_keeps_every_pointer_field() {
        let spec = batch::JobSpec {
            parallelism: Some(2),
            completions: Some(4),
            active_deadline_seconds: Some(600),
            backoff_limit: Some(0),
            ttl_seconds_after_finished: Some(0),
            completion_mode: s("Indexed"),
            suspend: Some(false),
            selector: Some(meta::LabelSelector {
                match_labels: labels(&[("job", "j")]),
                match_expressions: vec![],
            }),
            manual_selector: Some(true),
            pod_failure_policy: Some(batch::PodFailurePolicy {
                rules: vec![batch::PodFailurePolicyRule {
                    action: s("FailJob"),
                    on_exit_codes: Some(batch::PodFailurePolicyOnExitCodesRequirement {
                        container_name: None,
                        operator: s("In"),
                        values: vec![42],
                    }),
                    on_pod_conditions: vec![batch::PodFailurePolicyOnPodConditionsPattern {
                        r#type: s("DisruptionTarget"),
                        status: s("True"),
                    }],
                }],
            }),
            success_policy: Some(batch::SuccessPolicy {
                rules: vec![batch::SuccessPolicyRule {
                    succeeded_indexes: s("0-2"),
                    succeeded_count: Some(1),
                }],
            }),
            backoff_limit_per_index: Some(1),
            max_failed_indexes: Some(0),
            pod_replacement_policy: s("Failed"),
            managed_by: s("kubernetes.io/job-controller"),
            ..go_job_spec("x")
        };
        let job = batch::Job {
            metadata: Some(go_meta("j")),
            spec: Some(spec),
            status: None,
        };
        let v = decoded("batch/v1", "Job", &job).map(|v| v["spec"].clone());
        assert_eq!(
            v,
            Ok(json!({
                "parallelism": 2, "completions": 4, "activeDeadlineSeconds": 600, "backoffLimit": 0,
                "ttlSecondsAfterFinished": 0, "completionMode": "Indexed", "suspend": false,
                "selector": {"matchLabels": {"job": "j"}}, "manualSelector": true,
                "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]},
                                                  "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
                "successPolicy": {"rules": [{"succeededIndexes": "0-2", "succeededCount": 1}]},
                "backoffLimitPerIndex": 1, "maxFailedIndexes": 0, "podReplacementPolicy": "Failed",
                "managedBy": "kubernetes.io/job-controller",
                "template": {"spec": {"containers": [{"name": "j", "image": "x"}], "restartPolicy": "Never"}}
            }))
        );
    }

    #[test]
    fn kubectl_create_cronjob() {
        let cj = batch::CronJob {
            metadata: Some(go_meta("cj")),
            spec: Some(batch::CronJobSpec {
                schedule: s("*/5 * * * *"),
                time_zone: s("Etc/UTC"),
                starting_deadline_seconds: Some(30),
                concurrency_policy: s("Forbid"),
                suspend: Some(true),
                job_template: Some(batch::JobTemplateSpec {
                    metadata: Some(go_meta("cj")),
                    spec: Some(go_job_spec("x")),
                }),
                successful_jobs_history_limit: Some(0),
                failed_jobs_history_limit: Some(1),
            }),
            status: Some(batch::CronJobStatus::default()),
        };
        assert_eq!(
            decoded("batch/v1", "CronJob", &cj),
            Ok(json!({
                "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
                "spec": {
                    "schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "startingDeadlineSeconds": 30,
                    "concurrencyPolicy": "Forbid", "suspend": true,
                    "jobTemplate": {
                        "metadata": {"name": "cj"},
                        "spec": {"template": {"spec": {"containers": [{"name": "j", "image": "x"}], "restartPolicy": "Never"}}}
                    },
                    "successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 1
                }
            }))
        );
    }
}
