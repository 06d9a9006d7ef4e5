//! The pod row of `kubectl get pods`: READY, the aggregate STATUS reason
//! (init progress, a container's waiting or terminated reason, Terminating)
//! and RESTARTS with the time of the last restart, as kube-apiserver's
//! printer computes them.

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Column;
use super::format::{
    flag, human_duration_between, int, list, object, since, text, text_or, timestamp,
};

pub(super) const COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    Column::new(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    Column::age(),
    Column::wide("IP", "string", "podIP address allocated to the pod."),
    Column::wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled.",
    ),
    Column::wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set when this pod preempts other pods on the node.",
    ),
    Column::wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    ),
];

/// The row conditions kubectl uses to tell finished pods apart.
pub(super) fn row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// Restart totals and the latest restart time of a set of containers.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        self.count += int(status, "/restartCount");
        if let Some(finished) = timestamp(status, "/lastState/terminated/finishedAt") {
            self.last = Some(self.last.map_or(finished, |last| last.max(finished)));
        }
    }
}

pub(super) fn cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let status = &pod["status"];
    let phase = text(status, "/phase");
    let mut reason = text_or(status, "/reason", phase).to_string();
    let conditions = list(status, "/conditions");
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let init_specs = list(pod, "/spec/initContainers");
    // Init containers with restartPolicy Always are sidecars: they count as
    // containers of the pod and their restarts stay visible once it runs.
    let sidecars: HashSet<&str> = init_specs
        .iter()
        .filter(|c| text(c, "/restartPolicy") == "Always")
        .map(|c| text(c, "/name"))
        .collect();
    let total = list(pod, "/spec/containers").len() + sidecars.len();
    let mut ready = 0usize;
    let mut restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();

    let mut initializing = false;
    for (i, container) in list(status, "/initContainerStatuses").iter().enumerate() {
        let is_sidecar = sidecars.contains(text(container, "/name"));
        restarts.add(container);
        if is_sidecar {
            sidecar_restarts.add(container);
        }
        let terminated = object(container, "/state/terminated");
        let waiting = object(container, "/state/waiting");
        if terminated.is_some_and(|t| int(t, "/exitCode") == 0) {
            continue;
        }
        if is_sidecar && flag(container, "/started") {
            if flag(container, "/ready") {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match text(t, "/reason") {
                "" if int(t, "/signal") != 0 => format!("Init:Signal:{}", int(t, "/signal")),
                "" => format!("Init:ExitCode:{}", int(t, "/exitCode")),
                r => format!("Init:{r}"),
            }
        } else if let Some(w) =
            waiting.filter(|w| !matches!(text(w, "/reason"), "" | "PodInitializing"))
        {
            format!("Init:{}", text(w, "/reason"))
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| text(c, "/type") == "Initialized")
        .is_some_and(|c| text(c, "/status") == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for container in list(status, "/containerStatuses").iter().rev() {
            restarts.add(container);
            let waiting = object(container, "/state/waiting");
            let terminated = object(container, "/state/terminated");
            if let Some(w) = waiting.filter(|w| !text(w, "/reason").is_empty()) {
                reason = text(w, "/reason").to_string();
            } else if let Some(t) = terminated {
                reason = match text(t, "/reason") {
                    "" if int(t, "/signal") != 0 => format!("Signal:{}", int(t, "/signal")),
                    "" => format!("ExitCode:{}", int(t, "/exitCode")),
                    r => r.to_string(),
                };
            } else if flag(container, "/ready") && object(container, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last-listed container completed is still running while
        // another container runs.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if object(pod, "/metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|d| !d.is_null())
    {
        if text(status, "/reason") == "NodeLost" {
            reason = "Unknown".to_string();
        } else if !matches!(phase, "Succeeded" | "Failed") {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match restarts.last {
        Some(last) if restarts.count != 0 => format!(
            "{} ({} ago)",
            restarts.count,
            human_duration_between(last, now)
        ),
        _ => restarts.count.to_string(),
    };

    vec![
        text(pod, "/metadata/name").into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        since(pod, "/metadata/creationTimestamp", now).into(),
        text_or(pod, "/status/podIPs/0/ip", "<none>").into(),
        text_or(pod, "/spec/nodeName", "<none>").into(),
        text_or(status, "/nominatedNodeName", "<none>").into(),
        readiness_gates(pod).into(),
    ]
}

/// `true/total` of the pod's readiness gates, or `<none>`.
fn readiness_gates(pod: &Value) -> String {
    let gates = list(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conditions = list(pod, "/status/conditions");
    let satisfied = gates
        .iter()
        .filter(|gate| {
            let wanted = text(gate, "/conditionType");
            conditions
                .iter()
                .find(|c| text(c, "/type") == wanted)
                .is_some_and(|c| text(c, "/status") == "True")
        })
        .count();
    format!("{satisfied}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap_or_default()
    }

    fn pod(status: Value) -> Value {
        json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:55:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": status,
        })
    }

    fn running(name: &str, ready: bool) -> Value {
        json!({"name": name, "ready": ready, "restartCount": 0, "state": {"running": {"startedAt": "2024-05-01T11:55:01Z"}}})
    }

    #[test]
    fn running_pod_counts_ready_containers() {
        let p = pod(
            json!({"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}], "containerStatuses": [running("a", true), running("b", false)]}),
        );
        let cells = cells(&p, now());
        assert_eq!(
            cells[..5],
            [
                json!("web"),
                json!("1/2"),
                json!("Running"),
                json!("0"),
                json!("5m")
            ]
        );
        assert_eq!(
            cells[5..],
            [
                json!("10.0.0.5"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn waiting_reason_replaces_phase_and_restarts_show_last_time() {
        let crashing = json!({
            "name": "b", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:58:00Z"}},
        });
        let p =
            pod(json!({"phase": "Running", "containerStatuses": [running("a", true), crashing]}));
        let cells = cells(&p, now());
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "3 (2m ago)");
    }

    #[test]
    fn terminated_reasons_and_exit_codes_show() {
        let oom =
            json!({"name": "a", "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}});
        let p = pod(json!({"phase": "Running", "containerStatuses": [oom]}));
        assert_eq!(cells(&p, now())[2], "OOMKilled");
        let bare = json!({"name": "a", "state": {"terminated": {"exitCode": 3}}});
        let p = pod(json!({"phase": "Failed", "containerStatuses": [bare]}));
        assert_eq!(cells(&p, now())[2], "ExitCode:3");
        let completed =
            json!({"name": "a", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}});
        let p = pod(json!({"phase": "Succeeded", "containerStatuses": [completed]}));
        assert_eq!(cells(&p, now())[2], "Completed");
        assert!(row_conditions(&p).is_some());
    }

    #[test]
    fn completed_container_next_to_running_one_reads_running() {
        let completed =
            json!({"name": "b", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}});
        // Statuses are read from the last to the first, so the completed
        // container listed first sets the reason last.
        let p = pod(json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [completed, running("a", true)],
        }));
        assert_eq!(cells(&p, now())[2], "NotReady");
    }

    #[test]
    fn init_progress_is_reported() {
        let mut p = pod(json!({
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "i0", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}},
            ],
        }));
        p["spec"]["initContainers"] = json!([{"name": "i0"}, {"name": "i1"}]);
        assert_eq!(cells(&p, now())[2], "Init:1/2");
        p["status"]["initContainerStatuses"][1]["state"] =
            json!({"waiting": {"reason": "ErrImagePull"}});
        assert_eq!(cells(&p, now())[2], "Init:ErrImagePull");
        p["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 2}});
        assert_eq!(cells(&p, now())[2], "Init:ExitCode:2");
    }

    #[test]
    fn sidecars_count_as_containers() {
        let mut p = pod(json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                "state": {"running": {}}}],
            "containerStatuses": [running("a", true), running("b", true)],
        }));
        p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
        let cells = cells(&p, now());
        assert_eq!(cells[1], "3/3");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "1");
    }

    #[test]
    fn deleting_pod_is_terminating_unless_finished() {
        let mut p = pod(json!({"phase": "Running", "containerStatuses": [running("a", true)]}));
        p["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
        assert_eq!(cells(&p, now())[2], "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells(&p, now())[2], "Unknown");
        let mut done = pod(json!({"phase": "Succeeded"}));
        done["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
        assert_eq!(cells(&done, now())[2], "Succeeded");
    }

    #[test]
    fn scheduling_gated_and_readiness_gates() {
        let mut p = pod(json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
                           {"type": "example.com/lb", "status": "True"}],
        }));
        p["spec"]["readinessGates"] =
            json!([{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]);
        let cells = cells(&p, now());
        assert_eq!(cells[2], "SchedulingGated");
        assert_eq!(cells[8], "1/2");
    }
}
