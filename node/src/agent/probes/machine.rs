//! One probe's results as the kubelet judges them: consecutive successes
//! and failures counted against the thresholds, turned into the updates
//! the pod lifecycle acts on. Pure: no clock, no I/O.

use std::time::Duration;

use super::spec::ProbeSpec;
use super::{ProbeKind, ProbeUpdate};

/// How one run of a probe went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Failed, with the message the `Unhealthy` Event shows.
    Failure(String),
}

/// One probe of one run of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeMachine {
    kind: ProbeKind,
    success_threshold: u32,
    failure_threshold: u32,
    grace: Option<Duration>,
    successes: u32,
    failures: u32,
    /// The result last reported (or assumed before any run): readiness
    /// starts as failed, liveness as succeeded, startup as unknown.
    result: Option<bool>,
    done: bool,
}

impl ProbeMachine {
    pub fn new(kind: ProbeKind, spec: &ProbeSpec) -> Self {
        Self {
            kind,
            success_threshold: spec.success_threshold.max(1),
            failure_threshold: spec.failure_threshold.max(1),
            grace: spec.termination_grace,
            successes: 0,
            failures: 0,
            result: match kind {
                ProbeKind::Readiness => Some(false),
                ProbeKind::Liveness => Some(true),
                ProbeKind::Startup => None,
            },
            done: false,
        }
    }

    /// Whether the probe has nothing more to say about this run of the
    /// container: the startup probe succeeded, or a liveness or startup
    /// probe failed it.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Counts one run and returns what the lifecycle must hear of it.
    pub fn record(&mut self, outcome: Outcome) -> Vec<ProbeUpdate> {
        if self.done {
            return Vec::new();
        }
        let mut updates = Vec::new();
        let passed = match outcome {
            Outcome::Success => {
                self.successes = self.successes.saturating_add(1);
                self.failures = 0;
                if self.successes < self.success_threshold {
                    return updates;
                }
                true
            }
            Outcome::Failure(message) => {
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                updates.push(ProbeUpdate::Unhealthy {
                    kind: self.kind,
                    message,
                });
                if self.failures < self.failure_threshold {
                    return updates;
                }
                false
            }
        };
        if self.result == Some(passed) {
            return updates;
        }
        self.result = Some(passed);
        match (self.kind, passed) {
            (ProbeKind::Readiness, ready) => updates.push(ProbeUpdate::Ready(ready)),
            (ProbeKind::Startup, true) => {
                self.done = true;
                updates.push(ProbeUpdate::Started);
            }
            (ProbeKind::Liveness | ProbeKind::Startup, false) => {
                self.done = true;
                updates.push(ProbeUpdate::Failed {
                    kind: self.kind,
                    grace: self.grace,
                });
            }
            (ProbeKind::Liveness, true) => {}
        }
        updates
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::Action;
    use super::*;

    fn spec(success: u32, failure: u32) -> ProbeSpec {
        ProbeSpec {
            action: Action::Tcp {
                host: None,
                port: 80,
            },
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
            termination_grace: Some(Duration::from_secs(2)),
        }
    }

    fn fail() -> Outcome {
        Outcome::Failure("connection refused".into())
    }

    fn unhealthy(kind: ProbeKind) -> ProbeUpdate {
        ProbeUpdate::Unhealthy {
            kind,
            message: "connection refused".into(),
        }
    }

    #[test]
    fn readiness_needs_success_threshold_successes_in_a_row() {
        let mut m = ProbeMachine::new(ProbeKind::Readiness, &spec(2, 3));
        assert!(m.record(Outcome::Success).is_empty());
        assert_eq!(m.record(fail()), vec![unhealthy(ProbeKind::Readiness)]);
        assert!(m.record(Outcome::Success).is_empty());
        assert_eq!(m.record(Outcome::Success), vec![ProbeUpdate::Ready(true)]);
        assert!(m.record(Outcome::Success).is_empty(), "only changes count");
    }

    #[test]
    fn readiness_is_lost_after_failure_threshold_failures_and_comes_back() {
        let mut m = ProbeMachine::new(ProbeKind::Readiness, &spec(1, 3));
        assert_eq!(m.record(Outcome::Success), vec![ProbeUpdate::Ready(true)]);
        m.record(fail());
        m.record(fail());
        assert_eq!(
            m.record(fail()),
            vec![unhealthy(ProbeKind::Readiness), ProbeUpdate::Ready(false)]
        );
        assert_eq!(m.record(fail()), vec![unhealthy(ProbeKind::Readiness)]);
        assert_eq!(m.record(Outcome::Success), vec![ProbeUpdate::Ready(true)]);
        assert!(!m.done());
    }

    #[test]
    fn a_failing_readiness_probe_never_reports_a_change_from_unready() {
        let mut m = ProbeMachine::new(ProbeKind::Readiness, &spec(1, 1));
        for _ in 0..5 {
            assert_eq!(m.record(fail()), vec![unhealthy(ProbeKind::Readiness)]);
        }
    }

    #[test]
    fn liveness_fails_the_container_once_after_the_threshold() {
        let mut m = ProbeMachine::new(ProbeKind::Liveness, &spec(1, 3));
        m.record(fail());
        assert!(
            m.record(Outcome::Success).is_empty(),
            "a success resets the count"
        );
        m.record(fail());
        m.record(fail());
        assert_eq!(
            m.record(fail()),
            vec![
                unhealthy(ProbeKind::Liveness),
                ProbeUpdate::Failed {
                    kind: ProbeKind::Liveness,
                    grace: Some(Duration::from_secs(2)),
                },
            ]
        );
        assert!(m.done());
        assert!(m.record(fail()).is_empty());
    }

    #[test]
    fn startup_succeeds_once_and_is_done() {
        let mut m = ProbeMachine::new(ProbeKind::Startup, &spec(1, 30));
        assert_eq!(m.record(fail()), vec![unhealthy(ProbeKind::Startup)]);
        assert_eq!(m.record(Outcome::Success), vec![ProbeUpdate::Started]);
        assert!(m.done());
    }

    #[test]
    fn startup_failing_past_the_threshold_fails_the_container() {
        let mut m = ProbeMachine::new(ProbeKind::Startup, &spec(1, 2));
        m.record(fail());
        assert_eq!(
            m.record(fail()).last(),
            Some(&ProbeUpdate::Failed {
                kind: ProbeKind::Startup,
                grace: Some(Duration::from_secs(2)),
            })
        );
    }
}
