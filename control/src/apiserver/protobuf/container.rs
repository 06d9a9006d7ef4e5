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
            let core::ContainerResizePolicy {
                resource_name,
                restart_policy,
            } = p;
            Ok(Obj::new()
                .str("resourceName", resource_name)
                .str("restartPolicy", restart_policy)
                .done())
        })?
        .opt_str("restartPolicy", restart_policy)
        .list("volumeMounts", volume_mounts, volume_mount)?
        .list("volumeDevices", volume_devices, |d| {
            let core::VolumeDevice { name, device_path } = d;
            Ok(Obj::new()
                .str("name", name)
                .str("devicePath", device_path)
                .done())
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
    let core::ContainerPort {
        name,
        host_port,
        container_port,
        protocol,
        host_ip,
    } = p;
    Ok(Obj::new()
        .str("name", name)
        .int("hostPort", host_port)
        .int("containerPort", container_port)
        .str("protocol", protocol)
        .str("hostIP", host_ip)
        .done())
}

fn env_var(e: core::EnvVar) -> Conv {
    let core::EnvVar {
        name,
        value,
        value_from,
    } = e;
    Ok(Obj::new()
        .str("name", name)
        .str("value", value)
        .ptr("valueFrom", value_from, env_var_source)?
        .done())
}

fn env_var_source(s: core::EnvVarSource) -> Conv {
    let core::EnvVarSource {
        field_ref,
        resource_field_ref,
        config_map_key_ref,
        secret_key_ref,
        file_key_ref,
    } = s;
    reject("fileKeyRef", &file_key_ref)?;
    Ok(Obj::new()
        .ptr("fieldRef", field_ref, object_field_selector)?
        .ptr(
            "resourceFieldRef",
            resource_field_ref,
            resource_field_selector,
        )?
        .ptr("configMapKeyRef", config_map_key_ref, |s| {
            let core::ConfigMapKeySelector {
                local_object_reference,
                key,
                optional,
            } = s;
            key_selector(local_object_reference, key, optional)
        })?
        .ptr("secretKeyRef", secret_key_ref, |s| {
            let core::SecretKeySelector {
                local_object_reference,
                key,
                optional,
            } = s;
            key_selector(local_object_reference, key, optional)
        })?
        .done())
}

fn key_selector(
    reference: Option<core::LocalObjectReference>,
    key: Option<String>,
    optional: Option<bool>,
) -> Conv {
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
    let core::ObjectFieldSelector {
        api_version,
        field_path,
    } = s;
    Ok(Obj::new()
        .str("apiVersion", api_version)
        .str("fieldPath", field_path)
        .done())
}

pub(super) fn resource_field_selector(s: core::ResourceFieldSelector) -> Conv {
    let core::ResourceFieldSelector {
        container_name,
        resource,
        divisor,
    } = s;
    // The divisor is held by value, so Go writes "0" when it is unset.
    let divisor = divisor.filter(|q| {
        q.string
            .as_deref()
            .is_some_and(|s| !s.is_empty() && s != "0")
    });
    Ok(Obj::new()
        .str("containerName", container_name)
        .str("resource", resource)
        .quantity("divisor", divisor)
        .done())
}

fn env_from_source(s: core::EnvFromSource) -> Conv {
    let core::EnvFromSource {
        prefix,
        config_map_ref,
        secret_ref,
    } = s;
    Ok(Obj::new()
        .str("prefix", prefix)
        .ptr("configMapRef", config_map_ref, |r| {
            let core::ConfigMapEnvSource {
                local_object_reference: reference,
                optional,
            } = r;
            Ok(Obj::new()
                .inline(reference, local_object_reference)?
                .opt_bool("optional", optional)
                .done())
        })?
        .ptr("secretRef", secret_ref, |r| {
            let core::SecretEnvSource {
                local_object_reference: reference,
                optional,
            } = r;
            Ok(Obj::new()
                .inline(reference, local_object_reference)?
                .opt_bool("optional", optional)
                .done())
        })?
        .done())
}

pub(super) fn resource_requirements(r: core::ResourceRequirements) -> Conv {
    let core::ResourceRequirements {
        limits,
        requests,
        claims,
    } = r;
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
    let core::VolumeMount {
        name,
        read_only,
        recursive_read_only,
        mount_path,
        sub_path,
        mount_propagation,
        sub_path_expr,
    } = m;
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
            let core::ProbeHandler {
                exec,
                http_get,
                tcp_socket,
                grpc,
            } = h;
            Ok(Obj::new()
                .ptr("exec", exec, exec_action)?
                .ptr("httpGet", http_get, http_get_action)?
                .ptr("tcpSocket", tcp_socket, tcp_socket_action)?
                .ptr("grpc", grpc, |g| {
                    let core::GrpcAction { port, service } = g;
                    // `port` is required, so it is written even when zero.
                    Ok(Obj::new()
                        .opt_int("port", port)
                        .opt_str("service", service)
                        .done())
                })?
                .done())
        })?
        .int("initialDelaySeconds", initial_delay_seconds)
        .int("timeoutSeconds", timeout_seconds)
        .int("periodSeconds", period_seconds)
        .int("successThreshold", success_threshold)
        .int("failureThreshold", failure_threshold)
        .opt_int(
            "terminationGracePeriodSeconds",
            termination_grace_period_seconds,
        )
        .done())
}

fn exec_action(e: core::ExecAction) -> Conv {
    let core::ExecAction { command } = e;
    Ok(Obj::new().strs("command", command).done())
}

fn http_get_action(h: core::HttpGetAction) -> Conv {
    let core::HttpGetAction {
        path,
        port,
        host,
        scheme,
        http_headers,
    } = h;
    Ok(Obj::new()
        .str("path", path)
        .int_or_string("port", port)?
        .str("host", host)
        .str("scheme", scheme)
        .list("httpHeaders", http_headers, |h| {
            let core::HttpHeader { name, value } = h;
            // An empty header value is legal and `value` is required.
            Ok(Obj::new()
                .str("name", name)
                .opt_str("value", Some(value.unwrap_or_default()))
                .done())
        })?
        .done())
}

fn tcp_socket_action(t: core::TcpSocketAction) -> Conv {
    let core::TcpSocketAction { port, host } = t;
    Ok(Obj::new()
        .int_or_string("port", port)?
        .str("host", host)
        .done())
}

fn lifecycle(l: core::Lifecycle) -> Conv {
    let core::Lifecycle {
        post_start,
        pre_stop,
        stop_signal,
    } = l;
    // Newer than the API version this server serves.
    reject("stopSignal", &stop_signal)?;
    Ok(Obj::new()
        .ptr("postStart", post_start, lifecycle_handler)?
        .ptr("preStop", pre_stop, lifecycle_handler)?
        .done())
}

fn lifecycle_handler(h: core::LifecycleHandler) -> Conv {
    let core::LifecycleHandler {
        exec,
        http_get,
        tcp_socket,
        sleep,
    } = h;
    Ok(Obj::new()
        .ptr("exec", exec, exec_action)?
        .ptr("httpGet", http_get, http_get_action)?
        .ptr("tcpSocket", tcp_socket, tcp_socket_action)?
        .ptr("sleep", sleep, |s| {
            let core::SleepAction { seconds } = s;
            Ok(Obj::new()
                .opt_int("seconds", Some(seconds.unwrap_or(0)))
                .done())
        })?
        .done())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;

    use super::*;
    use crate::apiserver::protobuf::convert::FieldError;
    use crate::apiserver::protobuf::tests::{roundtrip, s};

    fn q(v: &str) -> Quantity {
        Quantity { string: s(v) }
    }

    fn port(n: i32) -> Option<IntOrString> {
        Some(IntOrString {
            r#type: Some(0),
            int_val: Some(n),
            str_val: s(""),
        })
    }

    fn named_port(name: &str) -> Option<IntOrString> {
        Some(IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: s(name),
        })
    }

    fn reference(name: &str) -> Option<core::LocalObjectReference> {
        Some(core::LocalObjectReference { name: s(name) })
    }

    /// A container with every field this module converts set to a non-zero value.
    fn full_container() -> core::Container {
        core::Container {
            name: s("app"),
            image: s("registry.example/app:1"),
            command: vec!["/app".into()],
            args: vec!["--serve".into()],
            working_dir: s("/work"),
            ports: vec![core::ContainerPort {
                name: s("http"),
                host_port: Some(8081),
                container_port: Some(8080),
                protocol: s("TCP"),
                host_ip: s("127.0.0.1"),
            }],
            env_from: vec![
                core::EnvFromSource {
                    prefix: s("CM_"),
                    config_map_ref: Some(core::ConfigMapEnvSource {
                        local_object_reference: reference("cm"),
                        optional: Some(true),
                    }),
                    secret_ref: None,
                },
                core::EnvFromSource {
                    prefix: s(""),
                    config_map_ref: None,
                    secret_ref: Some(core::SecretEnvSource {
                        local_object_reference: reference("sec"),
                        optional: Some(false),
                    }),
                },
            ],
            env: vec![
                core::EnvVar {
                    name: s("PLAIN"),
                    value: s("1"),
                    value_from: None,
                },
                core::EnvVar {
                    name: s("POD_NAME"),
                    value: s(""),
                    value_from: Some(core::EnvVarSource {
                        field_ref: Some(core::ObjectFieldSelector {
                            api_version: s("v1"),
                            field_path: s("metadata.name"),
                        }),
                        ..Default::default()
                    }),
                },
                core::EnvVar {
                    name: s("MEM"),
                    value: None,
                    value_from: Some(core::EnvVarSource {
                        resource_field_ref: Some(core::ResourceFieldSelector {
                            container_name: s("app"),
                            resource: s("limits.memory"),
                            divisor: Some(q("1Mi")),
                        }),
                        ..Default::default()
                    }),
                },
                core::EnvVar {
                    name: s("CPU"),
                    value: None,
                    value_from: Some(core::EnvVarSource {
                        resource_field_ref: Some(core::ResourceFieldSelector {
                            container_name: s(""),
                            resource: s("requests.cpu"),
                            divisor: Some(q("0")),
                        }),
                        ..Default::default()
                    }),
                },
                core::EnvVar {
                    name: s("FROM_CM"),
                    value: None,
                    value_from: Some(core::EnvVarSource {
                        config_map_key_ref: Some(core::ConfigMapKeySelector {
                            local_object_reference: reference("cm"),
                            key: s("k"),
                            optional: Some(true),
                        }),
                        ..Default::default()
                    }),
                },
                core::EnvVar {
                    name: s("FROM_SECRET"),
                    value: None,
                    value_from: Some(core::EnvVarSource {
                        secret_key_ref: Some(core::SecretKeySelector {
                            local_object_reference: reference("sec"),
                            key: s("password"),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                },
            ],
            resources: Some(core::ResourceRequirements {
                limits: BTreeMap::from([("memory".into(), q("128Mi")), ("cpu".into(), q("500m"))]),
                requests: BTreeMap::from([("cpu".into(), q("100m"))]),
                claims: vec![core::ResourceClaim {
                    name: s("gpu"),
                    request: s("one"),
                }],
            }),
            resize_policy: vec![core::ContainerResizePolicy {
                resource_name: s("cpu"),
                restart_policy: s("NotRequired"),
            }],
            restart_policy: s("Always"),
            restart_policy_rules: vec![],
            volume_mounts: vec![core::VolumeMount {
                name: s("data"),
                read_only: Some(true),
                recursive_read_only: s("Enabled"),
                mount_path: s("/data"),
                sub_path: s("sub"),
                mount_propagation: s("None"),
                sub_path_expr: s(""),
            }],
            volume_devices: vec![core::VolumeDevice {
                name: s("raw"),
                device_path: s("/dev/xvda"),
            }],
            liveness_probe: Some(core::Probe {
                handler: Some(core::ProbeHandler {
                    http_get: Some(core::HttpGetAction {
                        path: s("/healthz"),
                        port: named_port("http"),
                        host: s("localhost"),
                        scheme: s("HTTP"),
                        http_headers: vec![core::HttpHeader {
                            name: s("X-Probe"),
                            value: s(""),
                        }],
                    }),
                    ..Default::default()
                }),
                initial_delay_seconds: Some(1),
                timeout_seconds: Some(2),
                period_seconds: Some(3),
                success_threshold: Some(1),
                failure_threshold: Some(4),
                termination_grace_period_seconds: Some(0),
            }),
            readiness_probe: Some(core::Probe {
                handler: Some(core::ProbeHandler {
                    tcp_socket: Some(core::TcpSocketAction {
                        port: port(8080),
                        host: s(""),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            startup_probe: Some(core::Probe {
                handler: Some(core::ProbeHandler {
                    grpc: Some(core::GrpcAction {
                        port: Some(9090),
                        service: s(""),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            lifecycle: Some(core::Lifecycle {
                post_start: Some(core::LifecycleHandler {
                    exec: Some(core::ExecAction {
                        command: vec!["/hook".into()],
                    }),
                    ..Default::default()
                }),
                pre_stop: Some(core::LifecycleHandler {
                    sleep: Some(core::SleepAction { seconds: Some(5) }),
                    ..Default::default()
                }),
                stop_signal: None,
            }),
            termination_message_path: s("/dev/termination-log"),
            termination_message_policy: s("FallbackToLogsOnError"),
            image_pull_policy: s("IfNotPresent"),
            security_context: Some(core::SecurityContext {
                run_as_non_root: Some(true),
                ..Default::default()
            }),
            stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(true),
        }
    }

    #[test]
    fn every_container_field_converts() {
        let v = container(full_container());
        let expected = json!({
            "name": "app",
            "image": "registry.example/app:1",
            "command": ["/app"],
            "args": ["--serve"],
            "workingDir": "/work",
            "ports": [{"name": "http", "hostPort": 8081, "containerPort": 8080, "protocol": "TCP", "hostIP": "127.0.0.1"}],
            "envFrom": [
                {"prefix": "CM_", "configMapRef": {"name": "cm", "optional": true}},
                {"secretRef": {"name": "sec", "optional": false}}
            ],
            "env": [
                {"name": "PLAIN", "value": "1"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
                {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": true}}},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}}
            ],
            "resources": {
                "limits": {"cpu": "500m", "memory": "128Mi"},
                "requests": {"cpu": "100m"},
                "claims": [{"name": "gpu", "request": "one"}]
            },
            "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
            "restartPolicy": "Always",
            "volumeMounts": [{
                "name": "data", "readOnly": true, "recursiveReadOnly": "Enabled", "mountPath": "/data",
                "subPath": "sub", "mountPropagation": "None"
            }],
            "volumeDevices": [{"name": "raw", "devicePath": "/dev/xvda"}],
            "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": "http", "host": "localhost", "scheme": "HTTP",
                            "httpHeaders": [{"name": "X-Probe", "value": ""}]},
                "initialDelaySeconds": 1, "timeoutSeconds": 2, "periodSeconds": 3, "successThreshold": 1,
                "failureThreshold": 4, "terminationGracePeriodSeconds": 0
            },
            "readinessProbe": {"tcpSocket": {"port": 8080}},
            "startupProbe": {"grpc": {"port": 9090, "service": ""}},
            "lifecycle": {"postStart": {"exec": {"command": ["/hook"]}}, "preStop": {"sleep": {"seconds": 5}}},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {"runAsNonRoot": true},
            "stdin": true,
            "stdinOnce": true,
            "tty": true
        });
        assert_eq!(v, Ok(expected.clone()));
        assert_eq!(
            roundtrip::<k8s_openapi::api::core::v1::Container>(&expected),
            expected
        );
    }

    #[test]
    fn fields_newer_than_the_served_api_are_refused_by_name() {
        let mut c = full_container();
        c.restart_policy_rules = vec![core::ContainerRestartRule::default()];
        assert_eq!(
            container(c),
            Err(FieldError::unsupported("restartPolicyRules"))
        );
        let mut c = full_container();
        c.lifecycle = Some(core::Lifecycle {
            stop_signal: s("SIGTERM"),
            ..Default::default()
        });
        assert_eq!(
            container(c),
            Err(FieldError::unsupported("lifecycle.stopSignal"))
        );
        let mut c = full_container();
        c.env = vec![core::EnvVar {
            name: s("F"),
            value: None,
            value_from: Some(core::EnvVarSource {
                file_key_ref: Some(Default::default()),
                ..Default::default()
            }),
        }];
        assert_eq!(
            container(c),
            Err(FieldError::unsupported("env[0].valueFrom.fileKeyRef"))
        );
    }
}
