//! When a container's probes run: each on its own period from its initial
//! delay after the start; liveness and readiness wait for the startup
//! probe to succeed. A probe stops once it has nothing more to say about
//! this run (startup succeeded, liveness or startup failed it).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::machine::{Outcome, ProbeMachine};
use super::spec::{Action, ContainerProbes, ProbeSpec};
use super::{ProbeKind, ProbeUpdate};

/// Runs one check. The transport enforces `timeout` itself, so that the
/// failure message says what timed out.
pub trait Transport: Send + Sync + 'static {
    fn check(&self, action: &Action, timeout: Duration) -> impl Future<Output = Outcome> + Send;
}

/// Runs the probes of a container that started now, reporting each update
/// to `report` until it returns false or no probe has anything left to do.
pub async fn run<T: Transport>(
    probes: ContainerProbes,
    transport: T,
    report: impl Fn(ProbeUpdate) -> bool + Send + Sync,
) {
    let start = Instant::now();
    // Whether the startup probe succeeded; `None` while it runs.
    let (started, _) = watch::channel(probes.startup.is_none().then_some(true));
    let one = |kind, spec: Option<ProbeSpec>| {
        let (transport, report, started) = (&transport, &report, &started);
        async move {
            if let Some(spec) = spec {
                probe(kind, spec, start, transport, report, started).await;
            }
            if kind == ProbeKind::Startup {
                // Ended without success: the others never run for this run.
                started.send_if_modified(|s| {
                    let undecided = s.is_none();
                    if undecided {
                        *s = Some(false);
                    }
                    undecided
                });
            }
        }
    };
    tokio::join!(
        one(ProbeKind::Startup, probes.startup),
        one(ProbeKind::Liveness, probes.liveness),
        one(ProbeKind::Readiness, probes.readiness),
    );
}

async fn probe<T: Transport>(
    kind: ProbeKind,
    spec: ProbeSpec,
    start: Instant,
    transport: &T,
    report: &(impl Fn(ProbeUpdate) -> bool + Send + Sync),
    started: &watch::Sender<Option<bool>>,
) {
    if kind != ProbeKind::Startup {
        let mut gate = started.subscribe();
        match gate.wait_for(Option::is_some).await.map(|s| *s) {
            Ok(Some(true)) => {}
            _ => return,
        }
    }
    let first = (start + spec.initial_delay).max(Instant::now());
    let mut ticks = tokio::time::interval_at(first, spec.period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut machine = ProbeMachine::new(kind, &spec);
    loop {
        ticks.tick().await;
        let outcome = transport.check(&spec.action, spec.timeout).await;
        for update in machine.record(outcome) {
            if update == ProbeUpdate::Started {
                started.send_replace(Some(true));
            }
            if !report(update) {
                return;
            }
        }
        if machine.done() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use serde_json::json;
    use wasmpod_api::k8s_openapi::api::core::v1::Container;

    use super::*;

    /// The answers still to give, per port; the last one repeats.
    type Script = Vec<(u16, VecDeque<bool>)>;

    /// Answers each probe (by port) from a script, recording when it ran.
    #[derive(Clone, Default)]
    struct Scripted {
        answers: Arc<Mutex<Script>>,
        runs: Arc<Mutex<Vec<(u16, Duration)>>>,
        start: Option<Instant>,
    }

    impl Scripted {
        fn new(answers: &[(u16, &[bool])]) -> Self {
            Self {
                answers: Arc::new(Mutex::new(
                    answers
                        .iter()
                        .map(|(port, a)| (*port, a.iter().copied().collect()))
                        .collect(),
                )),
                runs: Arc::default(),
                start: Some(Instant::now()),
            }
        }

        fn runs(&self, port: u16) -> Vec<Duration> {
            let runs = self.runs.lock().expect("runs");
            runs.iter()
                .filter(|(p, _)| *p == port)
                .map(|(_, at)| *at)
                .collect()
        }
    }

    impl Transport for Scripted {
        async fn check(&self, action: &Action, _timeout: Duration) -> Outcome {
            let Action::Tcp { port, .. } = action else {
                return Outcome::Failure("not scripted".into());
            };
            let at = self.start.map(|s| s.elapsed()).unwrap_or_default();
            self.runs.lock().expect("runs").push((*port, at));
            let mut answers = self.answers.lock().expect("answers");
            let ok = answers
                .iter_mut()
                .find(|(p, _)| p == port)
                .and_then(|(_, a)| {
                    if a.len() > 1 {
                        a.pop_front()
                    } else {
                        a.front().copied()
                    }
                })
                .unwrap_or(false);
            if ok {
                Outcome::Success
            } else {
                Outcome::Failure(format!("port {port} refused"))
            }
        }
    }

    fn probes(container: serde_json::Value) -> ContainerProbes {
        let c: Container = serde_json::from_value(container).expect("a container");
        ContainerProbes::of(&c)
    }

    type Seen = Arc<Mutex<Vec<(Duration, ProbeUpdate)>>>;

    fn spawn(probes: ContainerProbes, transport: Scripted) -> (Seen, tokio::task::JoinHandle<()>) {
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        let start = Instant::now();
        let task = tokio::spawn(run(probes, transport, move |u| {
            sink.lock().expect("seen").push((start.elapsed(), u));
            true
        }));
        (seen, task)
    }

    fn changes(seen: &Seen) -> Vec<(u64, ProbeUpdate)> {
        seen.lock()
            .expect("seen")
            .iter()
            .filter(|(_, u)| !matches!(u, ProbeUpdate::Unhealthy { .. }))
            .map(|(at, u)| (at.as_secs(), u.clone()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_runs_every_period_after_the_initial_delay() {
        let transport = Scripted::new(&[(80, &[false, false, true])]);
        let (seen, _task) = spawn(
            probes(
                json!({"name": "c", "readinessProbe": {"tcpSocket": {"port": 80},
                "initialDelaySeconds": 5, "periodSeconds": 2}}),
            ),
            transport.clone(),
        );
        tokio::time::sleep(Duration::from_secs(12)).await;
        let secs: Vec<u64> = transport.runs(80).iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![5, 7, 9, 11]);
        assert_eq!(changes(&seen), vec![(9, ProbeUpdate::Ready(true))]);
        let unhealthy = seen.lock().expect("seen").len() - 1;
        assert_eq!(unhealthy, 2, "one Unhealthy per failed run");
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_and_readiness_wait_for_the_startup_probe() {
        let transport = Scripted::new(&[(1, &[false, false, true]), (2, &[true]), (3, &[true])]);
        let (seen, _task) = spawn(
            probes(json!({"name": "c",
                "startupProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 3, "failureThreshold": 10},
                "livenessProbe": {"tcpSocket": {"port": 2}, "periodSeconds": 10},
                "readinessProbe": {"tcpSocket": {"port": 3}, "periodSeconds": 10}})),
            transport.clone(),
        );
        tokio::time::sleep(Duration::from_secs(20)).await;
        let secs =
            |port| -> Vec<u64> { transport.runs(port).iter().map(Duration::as_secs).collect() };
        assert_eq!(secs(1), vec![0, 3, 6], "startup stops once it succeeded");
        assert_eq!(secs(2), vec![6, 16]);
        assert_eq!(secs(3), vec![6, 16]);
        assert_eq!(
            changes(&seen),
            vec![(6, ProbeUpdate::Started), (6, ProbeUpdate::Ready(true))]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_liveness_probe_reports_once_and_stops() {
        let transport = Scripted::new(&[(8, &[false])]);
        let (seen, task) = spawn(
            probes(
                json!({"name": "c", "livenessProbe": {"tcpSocket": {"port": 8},
                "periodSeconds": 1, "failureThreshold": 3}}),
            ),
            transport.clone(),
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            changes(&seen),
            vec![(
                2,
                ProbeUpdate::Failed {
                    kind: ProbeKind::Liveness,
                    grace: None
                }
            )]
        );
        assert_eq!(transport.runs(8).len(), 3);
        assert!(task.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_startup_probe_keeps_liveness_from_running() {
        let transport = Scripted::new(&[(1, &[false]), (2, &[true])]);
        let (seen, task) = spawn(
            probes(json!({"name": "c",
                "startupProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 1, "failureThreshold": 2},
                "livenessProbe": {"tcpSocket": {"port": 2}}})),
            transport.clone(),
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(transport.runs(2).is_empty());
        assert_eq!(
            changes(&seen),
            vec![(
                1,
                ProbeUpdate::Failed {
                    kind: ProbeKind::Startup,
                    grace: None
                }
            )]
        );
        assert!(task.is_finished());
    }
}
