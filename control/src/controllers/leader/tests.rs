use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// One Lease with resourceVersion checks, shared by several electors.
#[derive(Default)]
struct FakeApi {
    lease: Mutex<Option<Lease>>,
    version: AtomicUsize,
}

/// One elector's view of the fake API; `down` makes every call fail.
#[derive(Clone)]
struct Handle {
    api: Arc<FakeApi>,
    down: Arc<AtomicBool>,
}

fn error(code: u16, reason: &str) -> ClientError {
    ClientError::Api {
        method: http::Method::PUT,
        path: "/lease".into(),
        code,
        reason: reason.into(),
        message: reason.into(),
    }
}

impl Handle {
    fn check(&self) -> Result<(), ClientError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(error(503, "ServiceUnavailable"));
        }
        Ok(())
    }

    fn stored(&self, lease: &Lease) -> Lease {
        let mut lease = lease.clone();
        let v = self.api.version.fetch_add(1, Ordering::SeqCst) + 1;
        lease.metadata.resource_version = Some(v.to_string());
        *self.api.lease.lock().expect("lock") = Some(lease.clone());
        lease
    }
}

impl LeaseStore for Handle {
    async fn get(&self) -> Result<Option<Lease>, ClientError> {
        self.check()?;
        Ok(self.api.lease.lock().expect("lock").clone())
    }

    async fn create(&self, lease: &Lease) -> Result<Lease, ClientError> {
        self.check()?;
        if self.api.lease.lock().expect("lock").is_some() {
            return Err(error(409, "AlreadyExists"));
        }
        Ok(self.stored(lease))
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease, ClientError> {
        self.check()?;
        let current = self
            .api
            .lease
            .lock()
            .expect("lock")
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone());
        if current != lease.metadata.resource_version {
            return Err(error(409, "Conflict"));
        }
        Ok(self.stored(lease))
    }
}

/// Counts processes acting as leader and records every term's start.
#[derive(Default)]
struct Acting {
    now: AtomicUsize,
    overlaps: AtomicUsize,
    terms: Mutex<Vec<(&'static str, Duration)>>,
}

fn elector(
    api: &Arc<FakeApi>,
    name: &'static str,
    acting: &Arc<Acting>,
    start: Instant,
) -> (Arc<AtomicBool>, CancellationToken) {
    let down = Arc::new(AtomicBool::new(false));
    let handle = Handle {
        api: Arc::clone(api),
        down: Arc::clone(&down),
    };
    let stop = CancellationToken::new();
    let acting = Arc::clone(acting);
    tokio::spawn(run_elected(
        handle,
        LeaderElectionConfig::new(name),
        stop.clone(),
        move |term: CancellationToken| {
            let acting = Arc::clone(&acting);
            async move {
                if acting.now.fetch_add(1, Ordering::SeqCst) > 0 {
                    acting.overlaps.fetch_add(1, Ordering::SeqCst);
                }
                acting
                    .terms
                    .lock()
                    .expect("lock")
                    .push((name, start.elapsed()));
                term.cancelled().await;
                acting.now.fetch_sub(1, Ordering::SeqCst);
            }
        },
    ));
    (down, stop)
}

fn terms(acting: &Acting) -> Vec<(&'static str, Duration)> {
    acting.terms.lock().expect("lock").clone()
}

#[tokio::test(start_paused = true)]
async fn only_one_of_two_contenders_leads_and_a_released_lease_passes_at_once() {
    let api = Arc::new(FakeApi::default());
    let acting = Arc::new(Acting::default());
    let start = Instant::now();
    let (_, stop_a) = elector(&api, "a", &acting, start);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, stop_b) = elector(&api, "b", &acting, start);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(terms(&acting), [("a", Duration::ZERO)]);

    stop_a.cancel();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let all = terms(&acting);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].0, "b");
    assert!(
        all[1].1 <= Duration::from_millis(60_100) + Duration::from_secs(2),
        "b took over within one retry period: {all:?}"
    );
    let lease = api.lease.lock().expect("lock").clone().expect("a lease");
    let spec = lease.spec.expect("a spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(acting.overlaps.load(Ordering::SeqCst), 0);
    stop_b.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_stops_before_another_takes_over() {
    let api = Arc::new(FakeApi::default());
    let acting = Arc::new(Acting::default());
    let start = Instant::now();
    let (a_down, _stop_a) = elector(&api, "a", &acting, start);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, _stop_b) = elector(&api, "b", &acting, start);
    tokio::time::sleep(Duration::from_secs(30)).await;

    // a is cut off from the API (a network partition).
    let cut = start.elapsed();
    a_down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        acting.now.load(Ordering::SeqCst),
        0,
        "a stopped within the renew deadline and b has not started"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let all = terms(&acting);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].0, "b");
    assert!(
        all[1].1 >= cut + Duration::from_secs(15),
        "b waited a whole lease duration: {all:?}"
    );
    assert_eq!(acting.overlaps.load(Ordering::SeqCst), 0);

    // a comes back: it sees b's live lease and stays a follower.
    a_down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(terms(&acting).len(), 2);
    assert_eq!(acting.overlaps.load(Ordering::SeqCst), 0);
}
