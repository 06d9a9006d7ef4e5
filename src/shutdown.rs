//! Process shutdown: SIGINT or SIGTERM ends every long-running part of the
//! process (API server, node agent) together.

use tokio::sync::watch;

/// A shutdown that many tasks can wait for. Cloning shares it.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// Starts listening for SIGINT and SIGTERM.
    pub fn on_signal() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            signal().await;
            tracing::info!("shutting down");
            let _ = tx.send(true);
        });
        Shutdown { rx }
    }

    /// Resolves once shutdown has begun.
    pub async fn wait(mut self) {
        // An error means the sender is gone, which happens only once the
        // signal task ended, that is after it signalled.
        let _ = self.rx.wait_for(|stopping| *stopping).await;
    }
}

async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
