//! Fake nodes: Node objects created through the API with a Ready condition
//! and allocatable resources, and a Lease in kube-node-lease renewed every
//! 2 s from a background thread, so the node lifecycle controller sees
//! them alive. Nothing runs on them: their pods stay Pending once bound,
//! and a test acting as the node patches pod status itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::Cluster;

/// How often the Leases are renewed (they last 40 s).
const RENEW_EVERY: Duration = Duration::from_secs(2);

/// The time now as RFC 3339 with microseconds (a MicroTime).
pub fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// Renews the Leases of the fake nodes created through it until dropped.
pub struct FakeNodes {
    base_url: String,
    names: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    renewer: Option<JoinHandle<()>>,
}

impl FakeNodes {
    pub fn new(cluster: &Cluster) -> Self {
        let base_url = cluster.base_url();
        let names: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (base_url, names, stop) = (base_url.clone(), names.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(RENEW_EVERY);
                    let current = names.lock().map(|n| n.clone()).unwrap_or_default();
                    for name in current {
                        let url = format!(
                            "{base_url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
                        );
                        // A failed renewal is retried on the next round.
                        let _ = client
                            .patch(url)
                            .header("content-type", "application/merge-patch+json")
                            .timeout(Duration::from_secs(5))
                            .body(json!({"spec": {"renewTime": now_rfc3339()}}).to_string())
                            .send();
                    }
                }
            })
        };
        Self {
            base_url,
            names,
            stop,
            renewer: Some(renewer),
        }
    }

    /// Creates a Ready node with `labels` and `taints` (4 CPUs, 8 GiB,
    /// 110 pods) and its Lease.
    #[track_caller]
    pub fn add(&self, c: &Cluster, name: &str, labels: Value, taints: Value) {
        assert_eq!(c.base_url(), self.base_url, "a node of another cluster");
        c.post(
            "/api/v1/nodes",
            &json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": labels},
                "spec": {"taints": taints},
            }),
        )
        .expect(201);
        let allocatable = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
        c.patch(
            &format!("/api/v1/nodes/{name}/status"),
            "application/merge-patch+json",
            &json!({"status": {
                "allocatable": allocatable,
                "capacity": allocatable,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "lastHeartbeatTime": now_rfc3339()}],
            }}),
        )
        .expect(200);
        c.post(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            &json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                    "renewTime": now_rfc3339()},
            }),
        )
        .expect(201);
        if let Ok(mut names) = self.names.lock() {
            names.push(name.to_string());
        }
    }
}

impl Drop for FakeNodes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
    }
}
