//! The pod a Job creates from its template: the template's labels and
//! annotations plus the Job's tracking labels, an owner reference to the
//! Job, and for an Indexed Job its completion index (annotation, label and
//! the `JOB_COMPLETION_INDEX` variable in every container).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use wasmpod_api::defaults::{CONTROLLER_UID_LABEL, JOB_NAME_LABEL};

use super::COMPLETION_INDEX;

/// The environment variable holding an Indexed Job pod's index.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The reference that makes `job` the controller of what it creates.
pub fn owner_reference(job: &Job) -> OwnerReference {
    OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job.metadata.name.clone().unwrap_or_default(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The pod to create for `job` (with `index` for an Indexed Job).
pub fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let template = job.spec.as_ref().map(|s| &s.template);
    let template_meta = template
        .and_then(|t| t.metadata.clone())
        .unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    let mut annotations = template_meta.annotations.unwrap_or_default();
    labels
        .entry(JOB_NAME_LABEL.into())
        .or_insert_with(|| name.clone());
    if let Some(uid) = &job.metadata.uid {
        labels
            .entry(CONTROLLER_UID_LABEL.into())
            .or_insert_with(|| uid.clone());
    }
    let mut spec = template.and_then(|t| t.spec.clone()).unwrap_or_default();
    let generate_name = match index {
        Some(i) => {
            annotations.insert(COMPLETION_INDEX.into(), i.to_string());
            labels.insert(COMPLETION_INDEX.into(), i.to_string());
            let add = |c: &mut Container| set_env(c, COMPLETION_INDEX_ENV, &i.to_string());
            spec.containers.iter_mut().for_each(add);
            spec.init_containers.iter_mut().flatten().for_each(add);
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner_reference(job)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Sets `name` in the container's environment, replacing an earlier value.
fn set_env(container: &mut Container, name: &str, value: &str) {
    let env = container.env.get_or_insert_with(Vec::new);
    env.retain(|e| e.name != name);
    env.push(EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    });
}
