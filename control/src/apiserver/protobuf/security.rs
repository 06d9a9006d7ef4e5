//! Conversions of the container and pod security contexts. Every field of
//! both is a pointer in Go, so a present zero (`runAsUser: 0`,
//! `privileged: false`) is kept.

use k8s_pb::api::core::v1 as core;

use super::convert::{Conv, Obj};

pub(super) fn security_context(s: core::SecurityContext) -> Conv {
    let core::SecurityContext {
        capabilities,
        privileged,
        se_linux_options,
        windows_options,
        run_as_user,
        run_as_group,
        run_as_non_root,
        read_only_root_filesystem,
        allow_privilege_escalation,
        proc_mount,
        seccomp_profile,
        app_armor_profile,
    } = s;
    Ok(Obj::new()
        .ptr("capabilities", capabilities, |c| {
            let core::Capabilities { add, drop } = c;
            Ok(Obj::new().strs("add", add).strs("drop", drop).done())
        })?
        .opt_bool("privileged", privileged)
        .ptr("seLinuxOptions", se_linux_options, se_linux)?
        .ptr("windowsOptions", windows_options, windows)?
        .opt_int("runAsUser", run_as_user)
        .opt_int("runAsGroup", run_as_group)
        .opt_bool("runAsNonRoot", run_as_non_root)
        .opt_bool("readOnlyRootFilesystem", read_only_root_filesystem)
        .opt_bool("allowPrivilegeEscalation", allow_privilege_escalation)
        .opt_str("procMount", proc_mount)
        .ptr("seccompProfile", seccomp_profile, seccomp)?
        .ptr("appArmorProfile", app_armor_profile, app_armor)?
        .done())
}

pub(super) fn pod_security_context(s: core::PodSecurityContext) -> Conv {
    let core::PodSecurityContext {
        se_linux_options,
        windows_options,
        run_as_user,
        run_as_group,
        run_as_non_root,
        supplemental_groups,
        supplemental_groups_policy,
        fs_group,
        sysctls,
        fs_group_change_policy,
        seccomp_profile,
        app_armor_profile,
        se_linux_change_policy,
    } = s;
    Ok(Obj::new()
        .ptr("seLinuxOptions", se_linux_options, se_linux)?
        .ptr("windowsOptions", windows_options, windows)?
        .opt_int("runAsUser", run_as_user)
        .opt_int("runAsGroup", run_as_group)
        .opt_bool("runAsNonRoot", run_as_non_root)
        .longs("supplementalGroups", supplemental_groups)
        .opt_str("supplementalGroupsPolicy", supplemental_groups_policy)
        .opt_int("fsGroup", fs_group)
        .list("sysctls", sysctls, |s| {
            let core::Sysctl { name, value } = s;
            // `value` is required; an empty one is still a value.
            Ok(Obj::new()
                .str("name", name)
                .opt_str("value", Some(value.unwrap_or_default()))
                .done())
        })?
        .opt_str("fsGroupChangePolicy", fs_group_change_policy)
        .ptr("seccompProfile", seccomp_profile, seccomp)?
        .ptr("appArmorProfile", app_armor_profile, app_armor)?
        .opt_str("seLinuxChangePolicy", se_linux_change_policy)
        .done())
}

fn se_linux(o: core::SeLinuxOptions) -> Conv {
    let core::SeLinuxOptions {
        user,
        role,
        r#type,
        level,
    } = o;
    Ok(Obj::new()
        .str("user", user)
        .str("role", role)
        .str("type", r#type)
        .str("level", level)
        .done())
}

fn windows(o: core::WindowsSecurityContextOptions) -> Conv {
    let core::WindowsSecurityContextOptions {
        gmsa_credential_spec_name,
        gmsa_credential_spec,
        run_as_user_name,
        host_process,
    } = o;
    Ok(Obj::new()
        .opt_str("gmsaCredentialSpecName", gmsa_credential_spec_name)
        .opt_str("gmsaCredentialSpec", gmsa_credential_spec)
        .opt_str("runAsUserName", run_as_user_name)
        .opt_bool("hostProcess", host_process)
        .done())
}

fn seccomp(p: core::SeccompProfile) -> Conv {
    let core::SeccompProfile {
        r#type,
        localhost_profile,
    } = p;
    Ok(Obj::new()
        .str("type", r#type)
        .opt_str("localhostProfile", localhost_profile)
        .done())
}

fn app_armor(p: core::AppArmorProfile) -> Conv {
    let core::AppArmorProfile {
        r#type,
        localhost_profile,
    } = p;
    Ok(Obj::new()
        .str("type", r#type)
        .opt_str("localhostProfile", localhost_profile)
        .done())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_zeros_in_a_security_context_are_kept() {
        let sc = core::SecurityContext {
            capabilities: Some(core::Capabilities {
                add: vec!["NET_ADMIN".into()],
                drop: vec!["ALL".into()],
            }),
            privileged: Some(false),
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            read_only_root_filesystem: Some(true),
            seccomp_profile: Some(core::SeccompProfile {
                r#type: Some("RuntimeDefault".into()),
                localhost_profile: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            security_context(sc),
            Ok(json!({
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                "privileged": false,
                "runAsUser": 0,
                "runAsNonRoot": false,
                "readOnlyRootFilesystem": true,
                "seccompProfile": {"type": "RuntimeDefault"}
            }))
        );
    }

    #[test]
    fn pod_security_context_keeps_groups_and_sysctls() {
        let sc = core::PodSecurityContext {
            run_as_group: Some(1000),
            fs_group: Some(2000),
            supplemental_groups: vec![3000, 4000],
            sysctls: vec![core::Sysctl {
                name: Some("net.core.somaxconn".into()),
                value: Some("1024".into()),
            }],
            fs_group_change_policy: Some("OnRootMismatch".into()),
            ..Default::default()
        };
        assert_eq!(
            pod_security_context(sc),
            Ok(json!({
                "runAsGroup": 1000,
                "fsGroup": 2000,
                "supplementalGroups": [3000, 4000],
                "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}],
                "fsGroupChangePolicy": "OnRootMismatch"
            }))
        );
    }
}
