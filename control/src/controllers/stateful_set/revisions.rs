//! A StatefulSet's history: one ControllerRevision per distinct pod
//! template, named `<set>-<hash>`, whose `data` is the patch that restores
//! the template (`{"spec": {"template": {..., "$patch": "replace"}}}`), the
//! form `kubectl rollout history|undo statefulset` reads and applies.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

use crate::controllers::deployment::plan::{equal_ignoring_hash, template_hash};
use crate::controllers::replicaset::controller_ref;

/// The label holding a revision's hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The pod template a revision restores.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(t) = template.as_object_mut() {
        t.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

/// What to do about the revision of the set's current template.
#[derive(Debug, Clone)]
pub enum UpdateRevision {
    /// It exists and is the newest.
    Existing(Arc<ControllerRevision>),
    /// It exists but an older number: renumber it to `revision` (a
    /// rollback makes an old template the newest).
    Renumber(Arc<ControllerRevision>, i64),
    /// Create it.
    Create(Box<ControllerRevision>),
}

/// Finds or makes the revision of `set`'s template among `owned`.
pub fn update_revision(
    set: &StatefulSet,
    owned: &[Arc<ControllerRevision>],
) -> Option<UpdateRevision> {
    let template = set.spec.as_ref()?.template.clone();
    let newest = owned.iter().map(|r| r.revision).max().unwrap_or(0);
    let same = owned
        .iter()
        .filter(|r| template_of(r).is_some_and(|t| equal_ignoring_hash(&t, &template)))
        .max_by_key(|r| r.revision);
    if let Some(r) = same {
        return Some(if r.revision == newest {
            UpdateRevision::Existing(Arc::clone(r))
        } else {
            UpdateRevision::Renumber(Arc::clone(r), newest + 1)
        });
    }
    let collisions = set
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    Some(UpdateRevision::Create(Box::new(new_revision(
        set,
        &template,
        collisions,
        newest + 1,
    )?)))
}

fn new_revision(
    set: &StatefulSet,
    template: &PodTemplateSpec,
    collisions: i32,
    number: i64,
) -> Option<ControllerRevision> {
    let name = set.metadata.name.as_deref()?;
    let hash = template_hash(template, collisions);
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    let mut data = serde_json::to_value(template).ok()?;
    if let Value::Object(t) = &mut data {
        t.insert("$patch".into(), json!("replace"));
    }
    Some(ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: controller_ref(set).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(json!({"spec": {"template": data}}))),
        revision: number,
    })
}

/// The revisions to delete to keep `limit` beyond those in use (the
/// current and update revisions and any a pod was made from), oldest
/// first.
pub fn to_prune<'a>(
    owned: &'a [Arc<ControllerRevision>],
    in_use: &[&str],
    limit: i32,
) -> Vec<&'a Arc<ControllerRevision>> {
    let mut spare: Vec<&Arc<ControllerRevision>> = owned
        .iter()
        .filter(|r| {
            r.metadata
                .name
                .as_deref()
                .is_some_and(|n| !in_use.contains(&n))
        })
        .collect();
    spare.sort_by_key(|r| r.revision);
    let keep = usize::try_from(limit.max(0)).unwrap_or(0);
    let extra = spare.len().saturating_sub(keep);
    spare.truncate(extra);
    spare
}
