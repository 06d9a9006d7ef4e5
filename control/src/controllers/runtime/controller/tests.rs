use std::sync::Mutex;

use tokio::time::Instant;

use super::*;
use crate::controllers::runtime::Backoff;

#[derive(Debug)]
struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed")
    }
}

/// Records when each reconcile of a key started, and answers from a script.
struct Script {
    start: Instant,
    calls: Mutex<Vec<(String, u64)>>,
    answers: Mutex<Vec<Result<Action, Failed>>>,
}

fn controller(
    answers: Vec<Result<Action, Failed>>,
) -> (WorkQueue<ObjectRef>, Arc<Script>, CancellationToken) {
    let queue = WorkQueue::new(Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(30),
    });
    let script = Arc::new(Script {
        start: Instant::now(),
        calls: Mutex::new(Vec::new()),
        answers: Mutex::new(answers.into_iter().rev().collect()),
    });
    let stop = CancellationToken::new();
    let ctl = Controller::new("test", queue.clone(), Arc::clone(&script)).concurrency(2);
    tokio::spawn(ctl.run(
        |key: ObjectRef, script: Arc<Script>| async move {
            let at = script.start.elapsed().as_secs();
            script
                .calls
                .lock()
                .expect("lock")
                .push((key.name.clone(), at));
            script
                .answers
                .lock()
                .expect("lock")
                .pop()
                .unwrap_or(Ok(Action::Done))
        },
        |_key: &ObjectRef, _e: &Failed, _ctx: &Script| Action::Backoff,
        stop.clone(),
    ));
    (queue, script, stop)
}

fn calls(script: &Script) -> Vec<(String, u64)> {
    script.calls.lock().expect("lock").clone()
}

#[tokio::test(start_paused = true)]
async fn errors_are_retried_with_growing_backoff_until_success() {
    let (queue, script, stop) = controller(vec![Err(Failed), Err(Failed), Err(Failed)]);
    queue.add(ObjectRef::new(Some("ns"), "a"));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let a = |at| ("a".to_string(), at);
    assert_eq!(calls(&script), [a(0), a(1), a(3), a(7)]);
    assert_eq!(queue.failures(&ObjectRef::new(Some("ns"), "a")), 0);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn requeue_after_reconciles_again_after_the_delay() {
    let (queue, script, stop) =
        controller(vec![Ok(Action::requeue_after(Duration::from_secs(10)))]);
    queue.add(ObjectRef::new(None, "n"));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let n = |at| ("n".to_string(), at);
    assert_eq!(calls(&script), [n(0), n(10)]);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_stopped_controller_reconciles_nothing() {
    let (queue, script, stop) = controller(Vec::new());
    stop.cancel();
    tokio::time::sleep(Duration::from_secs(1)).await;
    queue.add(ObjectRef::new(None, "n"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(calls(&script).is_empty());
}
