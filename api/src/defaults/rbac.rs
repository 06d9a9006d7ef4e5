//! RBAC defaults: bindings refer to roles of the RBAC group, and User and
//! Group subjects belong to it (ServiceAccount subjects are core objects).

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub fn role_binding(obj: &mut RoleBinding) {
    role_ref(&mut obj.role_ref);
    obj.subjects.iter_mut().flatten().for_each(subject);
}

pub fn cluster_role_binding(obj: &mut ClusterRoleBinding) {
    role_ref(&mut obj.role_ref);
    obj.subjects.iter_mut().flatten().for_each(subject);
}

fn role_ref(r: &mut RoleRef) {
    if r.api_group.is_empty() {
        r.api_group = RBAC_GROUP.into();
    }
}

fn subject(s: &mut Subject) {
    // ServiceAccount subjects keep an empty group, which JSON leaves out.
    if s.api_group.as_deref().unwrap_or_default().is_empty()
        && matches!(s.kind.as_str(), "User" | "Group")
    {
        s.api_group = Some(RBAC_GROUP.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_default_api_groups() {
        let mut b = RoleBinding {
            role_ref: RoleRef {
                api_group: String::new(),
                kind: "Role".into(),
                name: "r".into(),
            },
            subjects: Some(vec![
                Subject {
                    kind: "User".into(),
                    name: "alice".into(),
                    ..Default::default()
                },
                Subject {
                    kind: "ServiceAccount".into(),
                    name: "sa".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        role_binding(&mut b);
        assert_eq!(b.role_ref.api_group, RBAC_GROUP);
        let subjects = b.subjects.expect("subjects");
        assert_eq!(subjects[0].api_group.as_deref(), Some(RBAC_GROUP));
        assert_eq!(subjects[1].api_group, None);
    }
}
