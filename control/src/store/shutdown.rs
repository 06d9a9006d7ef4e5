//! The stop signal of the store's background tasks: raised by `close`, and
//! also when the last handle to the store is dropped, so tasks never
//! outlive their store.

use tokio::sync::watch;

pub(crate) struct Shutdown(watch::Sender<bool>);

#[derive(Clone)]
pub(crate) struct Stopped(watch::Receiver<bool>);

impl Shutdown {
    pub(crate) fn new() -> Self {
        Self(watch::Sender::new(false))
    }

    pub(crate) fn signal(&self) {
        self.0.send_replace(true);
    }

    pub(crate) fn subscribe(&self) -> Stopped {
        Stopped(self.0.subscribe())
    }
}

impl Stopped {
    /// Resolves once the store is closing (or gone).
    pub(crate) async fn wait(&mut self) {
        // An error means the sender is gone, which also means stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}
