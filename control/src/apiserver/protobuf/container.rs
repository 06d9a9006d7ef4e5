//! Conversions of a core/v1 Container and what it holds: ports,
//! environment, resources, volume mounts, probes and lifecycle hooks.

use k8s_pb::api::core::v1 as core;

use super::convert::{Conv, Obj, reject, reject_list};
use super::security::security_context;

pub(super) fn container(c: core::Container) -> Conv {
    let core::Container {
        name,
        image,
        command,
        args,
        working_dir,
        ports,
        env_from,
        env,
        resources,
        resize_policy,
        restart_policy,
        restart_policy_rules,
        volume_mounts,
        volume_devices,
        liveness_probe,
        readiness_probe,
        startup_probe,
        lifecycle,
        termination_message_path,
        termination_message_policy,
        image_pull_policy,
        security_context: sc,
        stdin,
        stdin_once,
        tty,
    } = c;
    // Newer than the API version this server serves.
    reject_list("restartPolicyRules", &restart_policy_rules)?;
    Ok(Obj::new()
        .str("name", name)
        .str("image", image)
        .strs("command", command)
        .strs("args", args)
        .str("workingDir", working_dir)
        .list("ports", ports, container_port)?
        .list("envFrom", env_from, env_from_source)?
        .list("env", env, env_var)?
        .msg("resources", resources, resource_requirements)?
        .list("resizePolicy", resize_policy, |p| {
            let core::ContainerResizePolicy { resource_name, restart_policy } = p;
            Ok(Obj::new().str("resourceName", resource_name).str("restartPolicy", restart_policy).done())
        })?
        .opt_str("restartPolicy", restart_policy)
        .list("volumeMounts", volume_mounts, volume_mount)?
        .list("volumeDevices", volume_devices, |d| {
            let core::VolumeDevice { name, device_path } = d;
            Ok(Obj::new().str("name", name).str("devicePath", device_path).done())
        })?
        .ptr("livenessProbe", liveness_probe, probe)?
        .ptr("readinessProbe", readiness_probe, probe)?
        .ptr("startupProbe", startup_probe, probe)?
        .ptr("lifecycle", lifecycle, self::lifecycle)?
        .str("terminationMessagePath", termination_message_path)
        .str("terminationMessagePolicy", termination_message_policy)
        .str("imagePullPolicy", image_pull_policy)
        .ptr("securityContext", sc, security_context)?
        .flag("stdin", stdin)
        .flag("stdinOnce", stdin_once)
        .flag("tty", tty)
        .done())
}

fn container_port(p: core::ContainerPort) -> Conv {
    let core::ContainerPort { name, host_port, container_port, protocol, host_ip } = p;
    Ok(Obj::new()
        .str("name", name)
        .int("hostPort", host_port)
        .int("containerPort", container_port)
        .str("protocol", protocol)
        .str("hostIP", host_ip)
        .done())
}

fn env_var(e: core::EnvVar) -> Conv {
    let core::EnvVar { name, value, value_from } = e;
    Ok(Obj::new().str("name", name).str("value", value).ptr("valueFrom", value_from, env_var_source)?.done())
}

fn env_var_source(s: core::EnvVarSource) -> Conv {
    let core::EnvVarSource { field_ref, resource_field_ref, config_map_key_ref, secret_key_ref, file_key_ref } = s;
    reject("fileKeyRef", &file_key_ref)?;
    Ok(Obj::new()
        .ptr("fieldRef", field_ref, object_field_selector)?
        .ptr("resourceFieldRef", resource_field_ref, resource_field_selector)?
        .ptr("configMapKeyRef", config_map_key_ref, |s| {
            let core::ConfigMapKeySelector { local_object_reference, key, optional } = s;
            key_selector(local_object_reference, key, optional)
        })?
        .ptr("secretKeyRef", secret_key_ref, |s| {
            let core::SecretKeySelector { local_object_reference, key, optional } = s;
            key_selector(local_object_reference, key, optional)
        })?
        .done())
}

fn key_selector(reference: Option<core::LocalObjectReference>, key: Option<String>, optional: Option<bool>) -> Conv {
    Ok(Obj::new()
        .inline(reference, local_object_reference)?
        .str("key", key)
        .opt_bool("optional", optional)
        .done())
}

pub(super) fn local_object_reference(r: core::LocalObjectReference) -> Conv {
    let core::LocalObjectReference { name } = r;
    Ok(Obj::new().str("name", name).done())
}

pub(super) fn object_field_selector(s: core::ObjectFieldSelector) -> Conv {
    let core::ObjectFieldSelector { api_version, field_path } = s;
    Ok(Obj::new().str("apiVersion", api_version).str("fieldPath", field_path).done())
}

pub(super) fn resource_field_selector(s: core::ResourceFieldSelector) -> Conv {
    let core::ResourceFieldSelector { container_name, resource, divisor } = s;
    // The divisor is held by value, so Go writes "0" when it is unset.
    let divisor = divisor.filter(|q| q.string.as_deref().is_some_and(|s| !s.is_empty() && s != "0"));
    Ok(Obj::new().str("containerName", container_name).str("resource", resource).quantity("divisor", divisor).done())
}

fn env_from_source(s: core::EnvFromSource) -> Conv {
    let core::EnvFromSource { prefix, config_map_ref, secret_ref } = s;
    Ok(Obj::new()
        .str("prefix", prefix)
        .ptr("configMapRef", config_map_ref, |r| {
            let core::ConfigMapEnvSource { local_object_reference: reference, optional } = r;
            Ok(Obj::new().inline(reference, local_object_reference)?.opt_bool("optional", optional).done())
        })?
        .ptr("secretRef", secret_ref, |r| {
            let core::SecretEnvSource { local_object_reference: reference, optional } = r;
            Ok(Obj::new().inline(reference, local_object_reference)?.opt_bool("optional", optional).done())
        })?
        .done())
}

pub(super) fn resource_requirements(r: core::ResourceRequirements) -> Conv {
    let core::ResourceRequirements { limits, requests, claims } = r;
    Ok(Obj::new()
        .quantities("limits", limits)
        .quantities("requests", requests)
        .list("claims", claims, |c| {
            let core::ResourceClaim { name, request } = c;
            Ok(Obj::new().str("name", name).str("request", request).done())
        })?
        .done())
}

fn volume_mount(m: core::VolumeMount) -> Conv {
    let core::VolumeMount { name, read_only, recursive_read_only, mount_path, sub_path, mount_propagation, sub_path_expr } =
        m;
    Ok(Obj::new()
        .str("name", name)
        .flag("readOnly", read_only)
        .opt_str("recursiveReadOnly", recursive_read_only)
        .str("mountPath", mount_path)
        .str("subPath", sub_path)
        .opt_str("mountPropagation", mount_propagation)
        .str("subPathExpr", sub_path_expr)
        .done())
}

fn probe(p: core::Probe) -> Conv {
    let core::Probe {
        handler,
        initial_delay_seconds,
        timeout_seconds,
        period_seconds,
        success_threshold,
        failure_threshold,
        termination_grace_period_seconds,
    } = p;
    Ok(Obj::new()
        .inline(handler, |h| {
            let core::ProbeHandler { exec, http_get, tcp_socket, grpc } = h;
            Ok(Obj::new()
                .ptr("exec", exec, exec_action)?
                .ptr("httpGet", http_get, http_get_action)?
                .ptr("tcpSocket", tcp_socket, tcp_socket_action)?
                .ptr("grpc", grpc, |g| {
                    let core::GrpcAction { port, service } = g;
                    // `port` is required, so it is written even when zero.
                    Ok(Obj::new().opt_int("port", port).opt_str("service", service).done())
                })?
                .done())
        })?
        .int("initialDelaySeconds", initial_delay_seconds)
        .int("timeoutSeconds", timeout_seconds)
        .int("periodSeconds", period_seconds)
        .int("successThreshold", success_threshold)
        .int("failureThreshold", failure_threshold)
        .opt_int("terminationGracePeriodSeconds", termination_grace_period_seconds)
        .done())
}

fn exec_action(e: core::ExecAction) -> Conv {
    let core::ExecAction { command } = e;
    Ok(Obj::new().strs("command", command).done())
}

fn http_get_action(h: core::HttpGetAction) -> Conv {
    let core::HttpGetAction { path, port, host, scheme, http_headers } = h;
    Ok(Obj::new()
        .str("path", path)
        .int_or_string("port", port)?
        .str("host", host)
        .str("scheme", scheme)
        .list("httpHeaders", http_headers, |h| {
            let core::HttpHeader { name, value } = h;
            // An empty header value is legal and `value` is required.
            Ok(Obj::new().str("name", name).opt_str("value", Some(value.unwrap_or_default())).done())
        })?
        .done())
}

fn tcp_socket_action(t: core::TcpSocketAction) -> Conv {
    let core::TcpSocketAction { port, host } = t;
    Ok(Obj::new().int_or_string("port", port)?.str("host", host).done())
}

fn lifecycle(l: core::Lifecycle) -> Conv {
    let core::Lifecycle { post_start, pre_stop, stop_signal } = l;
    // Newer than the API version this server serves.
    reject("stopSignal", &stop_signal)?;
    Ok(Obj::new().ptr("postStart", post_start, lifecycle_handler)?.ptr("preStop", pre_stop, lifecycle_handler)?.done())
}

fn lifecycle_handler(h: core::LifecycleHandler) -> Conv {
    let core::LifecycleHandler { exec, http_get, tcp_socket, sleep } = h;
    Ok(Obj::new()
        .ptr("exec", exec, exec_action)?
        .ptr("httpGet", http_get, http_get_action)?
        .ptr("tcpSocket", tcp_socket, tcp_socket_action)?
        .ptr("sleep", sleep, |s| {
            let core::SleepAction { seconds } = s;
            Ok(Obj::new().opt_int("seconds", Some(seconds.unwrap_or(0))).done())
        })?
        .done())
}

