//! What the garbage collector does about one object, decided from its
//! metadata, the state of each of its owners and the objects it owns: pure,
//! so every rule of Kubernetes' garbage collection is unit-tested here.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The finalizer `propagationPolicy: Foreground` adds: the object goes once
/// no dependent that blocks owner deletion is left.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer `propagationPolicy: Orphan` adds: the object goes once
/// its dependents no longer name it.
pub const ORPHAN: &str = "orphan";

/// What became of the object an ownerReference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// It exists with the referenced uid (or is of a kind the collector does
    /// not follow, which is never presumed gone).
    Solid,
    /// It exists and is being deleted in the foreground: its dependents go
    /// first.
    WaitingForDependents,
    /// No object of that name has the referenced uid: the reference
    /// dangles.
    Absent,
}

impl OwnerState {
    /// The state of an owner that exists with `meta`.
    pub fn of(meta: &ObjectMeta) -> Self {
        if meta.deletion_timestamp.is_some() && has_finalizer(meta, FOREGROUND) {
            Self::WaitingForDependents
        } else {
            Self::Solid
        }
    }
}

/// How the object itself is to be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
}

impl Propagation {
    pub fn policy(self) -> &'static str {
        match self {
            Self::Background => "Background",
            Self::Foreground => "Foreground",
        }
    }
}

/// The steps for one object, in the order to take them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// Dependents (by uid) whose reference to this object is to be removed,
    /// because it is being deleted with the orphan policy.
    pub orphan: Vec<String>,
    /// The garbage collector's finalizer to remove from this object once
    /// the steps before succeeded.
    pub remove_finalizer: Option<&'static str>,
    /// The ownerReferences this object keeps, when it has a solid owner
    /// and some that are gone or being deleted in the foreground.
    pub keep_owner_references: Option<Vec<OwnerReference>>,
    /// Delete this object: none of its owners is left.
    pub delete: Option<Propagation>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Decides about the object with `meta`. `owners` holds the state of each
/// of its ownerReferences, in order (it may be empty for an object being
/// deleted, whose owners no longer matter); `dependents` are the objects
/// naming it as an owner.
pub fn plan(meta: &ObjectMeta, owners: &[OwnerState], dependents: &[&ObjectMeta]) -> Plan {
    let mut plan = Plan::default();
    let Some(uid) = meta.uid.as_deref() else {
        return plan;
    };
    if meta.deletion_timestamp.is_some() {
        if has_finalizer(meta, ORPHAN) {
            plan.orphan = dependents
                .iter()
                .filter(|d| references(d, uid).next().is_some())
                .filter_map(|d| d.uid.clone())
                .collect();
            plan.remove_finalizer = Some(ORPHAN);
        } else if has_finalizer(meta, FOREGROUND) {
            let blocked = dependents
                .iter()
                .any(|d| references(d, uid).any(|r| r.block_owner_deletion == Some(true)));
            if !blocked {
                plan.remove_finalizer = Some(FOREGROUND);
            }
        }
        return plan;
    }

    let refs = meta.owner_references.as_deref().unwrap_or_default();
    if refs.is_empty() || owners.len() != refs.len() {
        return plan;
    }
    let solid = owners.iter().filter(|s| **s == OwnerState::Solid).count();
    let waiting = owners.contains(&OwnerState::WaitingForDependents);
    if solid > 0 {
        if solid < refs.len() {
            let keep = refs
                .iter()
                .zip(owners)
                .filter(|(_, s)| **s == OwnerState::Solid)
                .map(|(r, _)| r.clone())
                .collect();
            plan.keep_owner_references = Some(keep);
        }
        return plan;
    }
    plan.delete = Some(if waiting && !dependents.is_empty() {
        Propagation::Foreground
    } else {
        Propagation::Background
    });
    plan
}

/// Removes `uid` from a dependent's ownerReferences: what remains.
pub fn without_owner(meta: &ObjectMeta, uid: &str) -> Vec<OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != uid)
        .cloned()
        .collect()
}

/// The finalizers of `meta` without `finalizer`.
pub fn without_finalizer(meta: &ObjectMeta, finalizer: &str) -> Vec<String> {
    meta.finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect()
}

fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

/// The ownerReferences of `meta` naming `uid`.
fn references<'a>(meta: &'a ObjectMeta, uid: &'a str) -> impl Iterator<Item = &'a OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .filter(move |r| r.uid == uid)
}
