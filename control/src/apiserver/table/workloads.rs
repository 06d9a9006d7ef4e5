//! Rows of the workload controllers' kinds: Deployment, ReplicaSet,
//! StatefulSet, DaemonSet, ReplicationController, Job, CronJob and
//! ControllerRevision.

use jiff::Timestamp;
use serde_json::Value;

use super::Column;
use super::format::{
    bool_cell, containers_and_images, count, human_duration_between, int, int_or, label_selector,
    labels, list, since, text, timestamp,
};

const CONTAINERS: Column = Column::wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Column = Column::wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);
const SELECTOR: Column = Column::wide(
    "Selector",
    "string",
    "A label query over pods that should match the replicas.",
);

pub(super) const DEPLOYMENT: &[Column] = &[
    Column::name(),
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    Column::new(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    Column::age(),
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) const REPLICA_SET: &[Column] = &[
    Column::name(),
    Column::new(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
    ),
    Column::new(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    Column::new(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    Column::age(),
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) const STATEFUL_SET: &[Column] = &[
    Column::name(),
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::age(),
    CONTAINERS,
    IMAGES,
];

pub(super) const DAEMON_SET: &[Column] = &[
    Column::name(),
    Column::new(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod.",
    ),
    Column::new(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
    ),
    Column::new(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
    ),
    Column::new(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
    ),
    Column::new(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
    ),
    Column::new(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
    ),
    Column::age(),
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) const JOB: &[Column] = &[
    Column::name(),
    Column::new("Status", "string", "Status of the job."),
    Column::new(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    Column::new("Duration", "string", "Time required to complete the job."),
    Column::age(),
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) const CRON_JOB: &[Column] = &[
    Column::name(),
    Column::new("Schedule", "string", "The schedule in Cron format."),
    Column::new(
        "Timezone",
        "string",
        "The time zone name for the given schedule.",
    ),
    Column::new(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions.",
    ),
    Column::new(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
    ),
    Column::new(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    Column::age(),
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) const CONTROLLER_REVISION: &[Column] = &[
    Column::name(),
    Column::new("Controller", "string", "Controller of the object"),
    Column::new(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    Column::age(),
];

/// The template columns (containers, images, and optionally the selector) of
/// `template` (a PodTemplateSpec).
fn template_cells(template: Option<&Value>, selector: Option<String>) -> Vec<Value> {
    let spec = template.and_then(|t| t.get("spec")).unwrap_or(&Value::Null);
    let (names, images) = containers_and_images(spec);
    let mut cells: Vec<Value> = vec![names.into(), images.into()];
    cells.extend(selector.map(Value::from));
    cells
}

pub(super) fn deployment(d: &Value, now: Timestamp) -> Vec<Value> {
    let mut cells: Vec<Value> = vec![
        text(d, "/metadata/name").into(),
        format!(
            "{}/{}",
            int(d, "/status/readyReplicas"),
            int_or(d, "/spec/replicas", 1)
        )
        .into(),
        int(d, "/status/updatedReplicas").into(),
        int(d, "/status/availableReplicas").into(),
        since(d, "/metadata/creationTimestamp", now).into(),
    ];
    cells.extend(template_cells(
        d.pointer("/spec/template"),
        Some(label_selector(d.pointer("/spec/selector"))),
    ));
    cells
}

pub(super) fn replica_set(rs: &Value, now: Timestamp) -> Vec<Value> {
    let mut cells: Vec<Value> = vec![
        text(rs, "/metadata/name").into(),
        int_or(rs, "/spec/replicas", 1).into(),
        int(rs, "/status/replicas").into(),
        int(rs, "/status/readyReplicas").into(),
        since(rs, "/metadata/creationTimestamp", now).into(),
    ];
    cells.extend(template_cells(
        rs.pointer("/spec/template"),
        Some(label_selector(rs.pointer("/spec/selector"))),
    ));
    cells
}

/// ReplicationControllers select with a plain label map rather than a
/// LabelSelector.
pub(super) fn replication_controller(rc: &Value, now: Timestamp) -> Vec<Value> {
    let mut cells: Vec<Value> = vec![
        text(rc, "/metadata/name").into(),
        int_or(rc, "/spec/replicas", 1).into(),
        int(rc, "/status/replicas").into(),
        int(rc, "/status/readyReplicas").into(),
        since(rc, "/metadata/creationTimestamp", now).into(),
    ];
    cells.extend(template_cells(
        rc.pointer("/spec/template"),
        Some(labels(rc.pointer("/spec/selector"))),
    ));
    cells
}

pub(super) fn stateful_set(s: &Value, now: Timestamp) -> Vec<Value> {
    let mut cells: Vec<Value> = vec![
        text(s, "/metadata/name").into(),
        format!(
            "{}/{}",
            int(s, "/status/readyReplicas"),
            int_or(s, "/spec/replicas", 1)
        )
        .into(),
        since(s, "/metadata/creationTimestamp", now).into(),
    ];
    cells.extend(template_cells(s.pointer("/spec/template"), None));
    cells
}

pub(super) fn daemon_set(ds: &Value, now: Timestamp) -> Vec<Value> {
    let mut cells: Vec<Value> = vec![
        text(ds, "/metadata/name").into(),
        int(ds, "/status/desiredNumberScheduled").into(),
        int(ds, "/status/currentNumberScheduled").into(),
        int(ds, "/status/numberReady").into(),
        int(ds, "/status/updatedNumberScheduled").into(),
        int(ds, "/status/numberAvailable").into(),
        labels(ds.pointer("/spec/template/spec/nodeSelector")).into(),
        since(ds, "/metadata/creationTimestamp", now).into(),
    ];
    cells.extend(template_cells(
        ds.pointer("/spec/template"),
        Some(label_selector(ds.pointer("/spec/selector"))),
    ));
    cells
}

/// Whether the job's condition of type `kind` is True; only the first
/// condition of a type counts.
fn job_condition(job: &Value, kind: &str) -> bool {
    list(job, "/status/conditions")
        .iter()
        .find(|c| text(c, "/type") == kind)
        .is_some_and(|c| text(c, "/status") == "True")
}

pub(super) fn job(job: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int(job, "/status/succeeded");
    let completions = match job.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match int(job, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        timestamp(job, "/status/startTime"),
        timestamp(job, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration_between(start, now),
        (Some(start), Some(end)) => human_duration_between(start, end),
    };
    let deleting = job
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    let status = if job_condition(job, "Complete") {
        "Complete"
    } else if job_condition(job, "Failed") {
        "Failed"
    } else if deleting {
        "Terminating"
    } else if job_condition(job, "Suspended") {
        "Suspended"
    } else if job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let mut cells: Vec<Value> = vec![
        text(job, "/metadata/name").into(),
        status.into(),
        completions.into(),
        duration.into(),
        since(job, "/metadata/creationTimestamp", now).into(),
    ];
    cells.extend(template_cells(
        job.pointer("/spec/template"),
        Some(label_selector(job.pointer("/spec/selector"))),
    ));
    cells
}

pub(super) fn cron_job(cj: &Value, now: Timestamp) -> Vec<Value> {
    let last_schedule = match timestamp(cj, "/status/lastScheduleTime") {
        Some(t) => human_duration_between(t, now),
        None => "<none>".to_string(),
    };
    let time_zone = cj
        .pointer("/spec/timeZone")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let mut cells: Vec<Value> = vec![
        text(cj, "/metadata/name").into(),
        text(cj, "/spec/schedule").into(),
        time_zone.into(),
        bool_cell(cj.pointer("/spec/suspend")).into(),
        count(cj, "/status/active").into(),
        last_schedule.into(),
        since(cj, "/metadata/creationTimestamp", now).into(),
    ];
    let job_spec = cj.pointer("/spec/jobTemplate/spec");
    let selector = label_selector(job_spec.and_then(|s| s.get("selector")));
    cells.extend(template_cells(
        job_spec.and_then(|s| s.get("template")),
        Some(selector),
    ));
    cells
}

/// The controller owning a revision, as `kind.group/name` in lower case
/// (`daemonset.apps/fluentd`), or `<none>`.
fn controller_of(obj: &Value) -> String {
    let Some(owner) = list(obj, "/metadata/ownerReferences")
        .iter()
        .find(|o| o["controller"] == true)
    else {
        return "<none>".to_string();
    };
    let kind = text(owner, "/kind");
    let group_kind = match text(owner, "/apiVersion").split_once('/') {
        Some((group, _)) if !group.is_empty() => format!("{kind}.{group}"),
        _ => kind.to_string(),
    };
    if group_kind.is_empty() {
        return text(owner, "/name").to_string();
    }
    format!("{}/{}", group_kind.to_lowercase(), text(owner, "/name"))
}

pub(super) fn controller_revision(cr: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        text(cr, "/metadata/name").into(),
        controller_of(cr).into(),
        int(cr, "/revision").into(),
        since(cr, "/metadata/creationTimestamp", now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap_or_default()
    }

    fn template() -> Value {
        json!({"spec": {"containers": [{"name": "web", "image": "web.wasm"}, {"name": "log", "image": "log.wasm"}]}})
    }

    #[test]
    fn deployment_prints_ready_over_desired() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-04-29T09:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        assert_eq!(
            deployment(&d, now()),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("2d3h"),
                json!("web,log"),
                json!("web.wasm,log.wasm"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn replica_set_and_daemon_set_cells_line_up_with_columns() {
        let rs = json!({"metadata": {"name": "web-1"}, "spec": {"replicas": 2, "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1}});
        let cells = replica_set(&rs, now());
        assert_eq!(cells.len(), REPLICA_SET.len());
        assert_eq!(cells[1..4], [json!(2), json!(2), json!(1)]);
        assert_eq!(cells[4], "<unknown>");
        let ds = json!({"metadata": {"name": "agent"},
            "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}, "containers": []}}},
            "status": {"desiredNumberScheduled": 3, "numberReady": 2}});
        let cells = daemon_set(&ds, now());
        assert_eq!(cells.len(), DAEMON_SET.len());
        assert_eq!(cells[6], "disk=ssd");
        assert_eq!(stateful_set(&ds, now()).len(), STATEFUL_SET.len());
        let rc = json!({"metadata": {"name": "old"}, "spec": {"selector": {"app": "old"}}});
        let cells = replication_controller(&rc, now());
        assert_eq!(cells.len(), REPLICA_SET.len());
        assert_eq!(cells[7], "app=old");
    }

    #[test]
    fn job_status_completions_and_duration() {
        let mut j = json!({
            "metadata": {"name": "build", "creationTimestamp": "2024-05-01T11:50:00Z"},
            "spec": {"completions": 1, "template": template()},
            "status": {"succeeded": 1, "startTime": "2024-05-01T11:50:00Z", "completionTime": "2024-05-01T11:50:42Z",
                "conditions": [{"type": "Complete", "status": "True"}]},
        });
        let cells = job(&j, now());
        assert_eq!(cells.len(), JOB.len());
        assert_eq!(
            cells[1..5],
            [json!("Complete"), json!("1/1"), json!("42s"), json!("10m")]
        );

        j["status"] = json!({"startTime": "2024-05-01T11:59:00Z"});
        j["spec"] = json!({"parallelism": 3});
        let cells = job(&j, now());
        assert_eq!(
            cells[1..4],
            [json!("Running"), json!("0/1 of 3"), json!("60s")]
        );

        j["status"]["conditions"] = json!([{"type": "Suspended", "status": "True"}]);
        assert_eq!(job(&j, now())[1], "Suspended");
        j["status"]["conditions"] = json!([{"type": "Failed", "status": "True"}]);
        assert_eq!(job(&j, now())[1], "Failed");
    }

    #[test]
    fn cron_job_prints_schedule_and_last_run() {
        let cj = json!({
            "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "suspend": false,
                "jobTemplate": {"spec": {"template": template()}}},
            "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": "2024-05-01T03:00:00Z"},
        });
        let cells = cron_job(&cj, now());
        assert_eq!(cells.len(), CRON_JOB.len());
        assert_eq!(
            cells[1..6],
            [
                json!("0 3 * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("9h")
            ]
        );
    }

    #[test]
    fn controller_revision_names_its_owner() {
        let cr = json!({
            "metadata": {"name": "agent-5d9f", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": true}]},
            "revision": 2,
        });
        assert_eq!(
            controller_revision(&cr, now())[1..3],
            [json!("daemonset.apps/agent"), json!(2)]
        );
        let orphan = json!({"metadata": {"name": "x"}, "revision": 1});
        assert_eq!(controller_revision(&orphan, now())[1], "<none>");
    }
}
