//! CPU and memory as the scheduler counts them: a pod's requests computed
//! as Kubernetes does (containers summed, init containers as a peak,
//! restartable "sidecar" init containers running alongside, plus the pod
//! overhead), and a node's allocatable resources.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use wasmpod_api::validation::quantity;

/// CPU in millicores and memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
}

/// What kube-scheduler assumes for scoring a container that requests
/// nothing (100m CPU, 200 MiB), so such pods still spread.
const DEFAULT_MILLI_CPU: i64 = 100;
const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

impl Resources {
    pub fn plus(self, other: Self) -> Self {
        Self {
            milli_cpu: self.milli_cpu.saturating_add(other.milli_cpu),
            memory: self.memory.saturating_add(other.memory),
        }
    }

    pub fn minus(self, other: Self) -> Self {
        Self {
            milli_cpu: self.milli_cpu.saturating_sub(other.milli_cpu),
            memory: self.memory.saturating_sub(other.memory),
        }
    }

    pub fn max(self, other: Self) -> Self {
        Self {
            milli_cpu: self.milli_cpu.max(other.milli_cpu),
            memory: self.memory.max(other.memory),
        }
    }

    fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Self {
        let Some(list) = list else {
            return Self::default();
        };
        Self {
            milli_cpu: list.get("cpu").map_or(0, milli),
            memory: list.get("memory").map_or(0, units),
        }
    }
}

/// A quantity in milli-units; unparsable values (validation refuses them)
/// count as zero.
fn milli(q: &Quantity) -> i64 {
    quantity::parse(&q.0)
        .map(|p| clamp(p.millis_ceil()))
        .unwrap_or(0)
}

fn units(q: &Quantity) -> i64 {
    quantity::parse(&q.0)
        .map(|p| clamp(p.units_ceil()))
        .unwrap_or(0)
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v.max(0)).unwrap_or(i64::MAX)
}

fn container_requests(c: &Container, non_zero: bool) -> Resources {
    let requests = Resources::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
    if !non_zero {
        return requests;
    }
    Resources {
        milli_cpu: if requests.milli_cpu == 0 {
            DEFAULT_MILLI_CPU
        } else {
            requests.milli_cpu
        },
        memory: if requests.memory == 0 {
            DEFAULT_MEMORY
        } else {
            requests.memory
        },
    }
}

/// The pod's effective requests (what the filter checks). With `non_zero`,
/// containers requesting nothing count with the scoring defaults.
pub fn pod_requests(spec: &PodSpec, non_zero: bool) -> Resources {
    let mut total = spec.containers.iter().fold(Resources::default(), |acc, c| {
        acc.plus(container_requests(c, non_zero))
    });
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let requests = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            total = total.plus(requests);
            sidecars = sidecars.plus(requests);
        } else {
            init_peak = init_peak.max(requests.plus(sidecars));
        }
    }
    total
        .max(init_peak)
        .plus(Resources::from_list(spec.overhead.as_ref()))
}

/// A node's allocatable CPU and memory, and how many pods it takes.
pub fn node_allocatable(node: &Node) -> (Resources, i64) {
    let list = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let pods = list.and_then(|l| l.get("pods")).map_or(0, units);
    (Resources::from_list(list), pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(cpu: &str, memory: &str, restart: Option<&str>) -> Container {
        let mut requests = BTreeMap::new();
        if !cpu.is_empty() {
            requests.insert("cpu".to_string(), Quantity(cpu.into()));
        }
        if !memory.is_empty() {
            requests.insert("memory".to_string(), Quantity(memory.into()));
        }
        Container {
            name: "c".into(),
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                requests: Some(requests),
                ..Default::default()
            }),
            restart_policy: restart.map(str::to_string),
            ..Container::default()
        }
    }

    #[test]
    fn containers_add_up_and_init_containers_count_as_a_peak() {
        let spec = PodSpec {
            containers: vec![
                container("250m", "64Mi", None),
                container("250m", "64Mi", None),
            ],
            init_containers: Some(vec![
                container("1", "16Mi", None),
                container("100m", "1Gi", None),
            ]),
            ..PodSpec::default()
        };
        assert_eq!(
            pod_requests(&spec, false),
            Resources {
                milli_cpu: 1000,
                memory: 1 << 30
            }
        );
    }

    #[test]
    fn sidecar_init_containers_run_alongside_everything_after_them() {
        let spec = PodSpec {
            containers: vec![container("100m", "10Mi", None)],
            init_containers: Some(vec![
                container("200m", "", Some("Always")),
                container("500m", "", None),
            ]),
            ..PodSpec::default()
        };
        // max(100m + 200m, 500m + 200m)
        assert_eq!(pod_requests(&spec, false).milli_cpu, 700);
    }

    #[test]
    fn overhead_is_added_and_empty_requests_get_scoring_defaults() {
        let spec = PodSpec {
            containers: vec![container("", "", None)],
            overhead: Some([("cpu".to_string(), Quantity("50m".into()))].into()),
            ..PodSpec::default()
        };
        assert_eq!(pod_requests(&spec, false).milli_cpu, 50);
        assert_eq!(
            pod_requests(&spec, true),
            Resources {
                milli_cpu: 150,
                memory: DEFAULT_MEMORY
            }
        );
    }

    #[test]
    fn allocatable_reads_cpu_memory_and_pods() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "110"}}
        }))
        .expect("a node");
        assert_eq!(
            node_allocatable(&node),
            (
                Resources {
                    milli_cpu: 2000,
                    memory: 1 << 30
                },
                110
            )
        );
    }
}
