use super::*;

fn queue() -> WorkQueue<&'static str> {
    WorkQueue::new(Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(30),
    })
}

/// The key `get` hands out if one is ready without waiting.
async fn ready_now(q: &WorkQueue<&'static str>) -> Option<&'static str> {
    tokio::time::timeout(Duration::from_millis(1), q.get())
        .await
        .ok()
        .flatten()
}

#[tokio::test(start_paused = true)]
async fn a_key_added_twice_is_processed_once() {
    let q = queue();
    q.add("a");
    q.add("b");
    q.add("a");
    assert_eq!(q.len(), 2);
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, Some("b"));
    assert_eq!(ready_now(&q).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_key_being_processed_is_not_handed_out_again_until_done() {
    let q = queue();
    q.add("a");
    assert_eq!(q.get().await, Some("a"));
    q.add("a");
    assert_eq!(ready_now(&q).await, None, "still processing");
    q.done(&"a");
    assert_eq!(ready_now(&q).await, Some("a"), "re-added while processing");
    q.done(&"a");
    assert_eq!(ready_now(&q).await, None);
}

#[tokio::test(start_paused = true)]
async fn delayed_keys_become_ready_when_due() {
    let q = queue();
    q.add_after("a", Duration::from_secs(5));
    q.add_after("b", Duration::from_secs(2));
    let start = Instant::now();
    assert_eq!(q.get().await, Some("b"));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn the_earliest_delayed_add_wins_and_add_cancels_it() {
    let q = queue();
    q.add_after("a", Duration::from_secs(5));
    q.add_after("a", Duration::from_secs(10));
    q.add_after("a", Duration::from_secs(1));
    let start = Instant::now();
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    q.done(&"a");
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(ready_now(&q).await, None, "only one entry per key");

    q.add_after("a", Duration::from_secs(5));
    q.add("a");
    assert_eq!(q.get().await, Some("a"));
    q.done(&"a");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(ready_now(&q).await, None, "the delayed add was dropped");
}

#[tokio::test(start_paused = true)]
async fn a_waiting_getter_wakes_for_an_earlier_delayed_key() {
    let q = queue();
    q.add_after("late", Duration::from_secs(60));
    let getter = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    tokio::task::yield_now().await;
    let start = Instant::now();
    q.add_after("soon", Duration::from_secs(1));
    assert_eq!(getter.await.expect("getter"), Some("soon"));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_per_failure_up_to_the_cap_and_forget_resets_it() {
    let q = queue();
    let delays: Vec<u64> = (0..7).map(|_| q.add_with_backoff("a").as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(q.failures(&"a"), 7);
    q.forget(&"a");
    assert_eq!(q.failures(&"a"), 0);
    assert_eq!(q.add_with_backoff("a"), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn shutting_down_ends_every_getter() {
    let q = queue();
    let getter = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    tokio::task::yield_now().await;
    q.shut_down();
    assert_eq!(getter.await.expect("getter"), None);
    q.add("a");
    assert_eq!(q.get().await, None);
}
