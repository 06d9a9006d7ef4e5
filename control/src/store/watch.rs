//! One watch: the window's events after the requested revision, then live
//! events from the resource's broadcast channel, skipping any revision
//! already sent. A watcher that falls behind its channel catches up from
//! the window; one that falls behind the window too gets `Expired` and
//! ends, as does every watcher when the feed starts over.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::feed::Feed;
use super::types::{Event, StoreError};

/// The events of one resource (optionally one namespace) after a revision,
/// in revision order without gaps.
pub struct WatchStream {
    resource: String,
    namespace: Option<String>,
    replay: VecDeque<Arc<Event>>,
    live: BroadcastStream<Arc<Event>>,
    /// Every event of the resource up to this revision has been sent or
    /// filtered out.
    last: i64,
    feed: Arc<Feed>,
    done: bool,
}

impl WatchStream {
    pub(crate) fn start(
        feed: Arc<Feed>,
        resource: &str,
        namespace: Option<&str>,
        from_revision: i64,
    ) -> Result<Self, StoreError> {
        let subscription = feed.subscribe(resource, from_revision)?;
        Ok(Self {
            resource: resource.to_owned(),
            namespace: namespace.map(str::to_owned),
            replay: subscription.replay.into(),
            live: BroadcastStream::new(subscription.receiver),
            last: from_revision,
            feed,
            done: false,
        })
    }

    fn wanted(&self, event: &Event) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| event.key.namespace == ns)
    }

    fn expire(&mut self, error: StoreError) -> Poll<Option<Result<Arc<Event>, StoreError>>> {
        self.done = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for WatchStream {
    type Item = Result<Arc<Event>, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(event) = this.replay.pop_front() {
                if event.revision <= this.last {
                    continue;
                }
                this.last = event.revision;
                if this.wanted(&event) {
                    return Poll::Ready(Some(Ok(event)));
                }
                continue;
            }
            match Pin::new(&mut this.live).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(event))) => {
                    if event.revision <= this.last {
                        continue;
                    }
                    this.last = event.revision;
                    if this.wanted(&event) {
                        return Poll::Ready(Some(Ok(event)));
                    }
                }
                // The channel dropped events this watcher had not read yet;
                // the window still has them unless it moved past `last`.
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(_)))) => {
                    match this.feed.since(&this.resource, this.last) {
                        Ok(events) => this.replay = events.into(),
                        Err(error) => return this.expire(error),
                    }
                }
                Poll::Ready(None) => {
                    if this.feed.is_closed() {
                        this.done = true;
                        return Poll::Ready(None);
                    }
                    // The feed started over: events may be missing.
                    let oldest = this.feed.base();
                    let requested = this.last;
                    return this.expire(StoreError::Expired { requested, oldest });
                }
            }
        }
    }
}
