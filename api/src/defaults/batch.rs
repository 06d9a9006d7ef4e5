//! Defaults of Jobs and CronJobs, including the selector the API server
//! generates for a Job from its uid and name.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::pod::pod_template;

/// Labels the generated Job selector and pod template carry.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

pub fn job(obj: &mut Job) {
    let Some(spec) = obj.spec.as_mut() else {
        return;
    };
    // A non-parallel Job may leave both unset; both then mean one pod.
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    spec.completion_mode
        .get_or_insert_with(|| "NonIndexed".into());
    spec.suspend.get_or_insert(false);
    if spec.pod_replacement_policy.is_none() {
        let policy = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy = Some(policy.into());
    }

    // The Job's own labels default to the labels the user gave its template.
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .filter(|l| !l.is_empty());
    if obj.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
        obj.metadata.labels = template_labels;
    }

    if spec.manual_selector != Some(true) {
        let uid = obj.metadata.uid.clone().filter(|u| !u.is_empty());
        let name = obj.metadata.name.clone().unwrap_or_default();
        if let Some(uid) = uid {
            generate_selector(spec, &uid, &name);
            // Reading a Job back defaults its labels again, so a Job created
            // without labels shows the generated ones; store them the same way.
            if obj.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
                obj.metadata.labels = spec
                    .template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone());
            }
        }
    }
    pod_template(&mut spec.template);
}

/// Adds the uid and name labels to the template (unless the user set them,
/// which validation then checks) and selects on the uid.
fn generate_selector(spec: &mut k8s_openapi::api::batch::v1::JobSpec, uid: &str, name: &str) {
    let labels = spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new);
    for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        labels.entry(key.into()).or_insert_with(|| name.into());
    }
    for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
        labels.entry(key.into()).or_insert_with(|| uid.into());
    }
    let selector = spec.selector.get_or_insert_with(LabelSelector::default);
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .entry(CONTROLLER_UID_LABEL.into())
        .or_insert_with(|| uid.into());
}

/// CronJob defaults; the job template gets pod template defaults only, as
/// Kubernetes defaults Jobs when it creates them.
pub fn cron_job(obj: &mut CronJob) {
    let Some(spec) = obj.spec.as_mut() else {
        return;
    };
    spec.concurrency_policy
        .get_or_insert_with(|| "Allow".into());
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
    if let Some(job_spec) = spec.job_template.spec.as_mut() {
        pod_template(&mut job_spec.template);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobSpec};
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn job_named(labels: Option<&[(&str, &str)]>) -> Job {
        let labels = labels.map(|l| {
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels,
                        ..Default::default()
                    }),
                    spec: Some(Default::default()),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn job_defaults_match_kubernetes() {
        let mut j = job_named(None);
        job(&mut j);
        let spec = j.spec.expect("spec");
        assert_eq!((spec.completions, spec.parallelism), (Some(1), Some(1)));
        assert_eq!(spec.backoff_limit, Some(6));
        assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
        assert_eq!(spec.suspend, Some(false));
        assert_eq!(
            spec.pod_replacement_policy.as_deref(),
            Some("TerminatingOrFailed")
        );
    }

    #[test]
    fn parallel_job_keeps_unset_completions() {
        let mut j = job_named(None);
        j.spec.as_mut().expect("spec").parallelism = Some(3);
        job(&mut j);
        let spec = j.spec.expect("spec");
        assert_eq!((spec.completions, spec.parallelism), (None, Some(3)));
    }

    #[test]
    fn job_selector_is_generated_from_uid_and_name() {
        let mut j = job_named(Some(&[("app", "pi")]));
        job(&mut j);
        let spec = j.spec.as_ref().expect("spec");
        let selector = spec
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .expect("selector");
        assert_eq!(
            selector,
            [(CONTROLLER_UID_LABEL.to_string(), "u-1".to_string())].into()
        );
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .expect("labels");
        for (k, v) in [
            (CONTROLLER_UID_LABEL, "u-1"),
            (LEGACY_CONTROLLER_UID_LABEL, "u-1"),
            (JOB_NAME_LABEL, "pi"),
            (LEGACY_JOB_NAME_LABEL, "pi"),
            ("app", "pi"),
        ] {
            assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
        }
        // The Job's labels come from what the user put on the template.
        assert_eq!(
            j.metadata.labels,
            Some([("app".to_string(), "pi".to_string())].into())
        );
    }

    #[test]
    fn job_without_labels_shows_generated_ones() {
        let mut j = job_named(None);
        job(&mut j);
        assert_eq!(
            j.metadata
                .labels
                .expect("labels")
                .get(JOB_NAME_LABEL)
                .map(String::as_str),
            Some("pi")
        );
    }

    #[test]
    fn manual_selector_is_left_alone() {
        let mut j = job_named(None);
        j.spec.as_mut().expect("spec").manual_selector = Some(true);
        job(&mut j);
        assert_eq!(j.spec.expect("spec").selector, None);
    }

    #[test]
    fn cron_job_defaults_match_kubernetes() {
        let mut c = CronJob {
            spec: Some(CronJobSpec {
                schedule: "* * * * *".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        cron_job(&mut c);
        let spec = c.spec.expect("spec");
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Allow"));
        assert_eq!(spec.suspend, Some(false));
        assert_eq!(
            (
                spec.successful_jobs_history_limit,
                spec.failed_jobs_history_limit
            ),
            (Some(3), Some(1))
        );
    }
}
