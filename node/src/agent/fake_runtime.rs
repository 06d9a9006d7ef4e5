//! A container runtime that executes nothing: each container behaves as
//! scripted for its image (run until stopped, exit after a while, trap, run
//! out of memory, fail to start). The agent's tests drive pods with it, and
//! it serves hollow nodes that report pods Running without running them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::container_runtime::{
    ContainerHandle, ContainerRuntime, ContainerSpec, ExitStatus, StartError,
};

/// How a fake container behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Runs until killed; ignores requests to stop.
    RunUntilKilled,
    /// Runs until asked to stop (then exits 0) or killed.
    RunUntilTerminated,
    /// Exits with `code` after `after`.
    Exit { after: Duration, code: i32 },
    /// Traps with `message` after `after`.
    Trap { after: Duration, message: String },
    /// Exceeds its memory limit after `after`.
    OutOfMemory { after: Duration },
    /// Does not start.
    FailStart(StartError),
}

/// See the module documentation.
#[derive(Debug)]
pub struct FakeRuntime {
    default: Behavior,
    by_image: Mutex<HashMap<String, Behavior>>,
    started: Mutex<Vec<ContainerSpec>>,
    /// Whether starts are kept for [`FakeRuntime::starts`]; a long-running
    /// hollow node keeps none, so its memory does not grow with its pods.
    record_starts: bool,
    running: Arc<AtomicUsize>,
}

impl FakeRuntime {
    /// A runtime whose containers behave as `default` unless their image
    /// has a behaviour of its own.
    pub fn new(default: Behavior) -> Self {
        Self {
            default,
            by_image: Mutex::new(HashMap::new()),
            started: Mutex::new(Vec::new()),
            record_starts: true,
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Like [`FakeRuntime::new`], but keeps no record of starts.
    pub fn unrecorded(default: Behavior) -> Self {
        Self {
            record_starts: false,
            ..Self::new(default)
        }
    }

    /// Scripts the containers of `image` from now on.
    pub fn set(&self, image: &str, behavior: Behavior) {
        lock(&self.by_image).insert(image.to_string(), behavior);
    }

    /// Every spec a start was asked for, in order (failed starts included).
    pub fn starts(&self) -> Vec<ContainerSpec> {
        lock(&self.started).clone()
    }

    /// Containers started and not yet ended.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    fn behavior(&self, image: &str) -> Behavior {
        lock(&self.by_image)
            .get(image)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }
}

/// Locks a mutex, recovering the data if a panicking test poisoned it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
enum Signal {
    Terminate,
    Kill,
}

/// A fake container.
#[derive(Debug)]
pub struct FakeHandle {
    signals: mpsc::UnboundedSender<Signal>,
    exit: watch::Receiver<Option<ExitStatus>>,
    image_id: String,
}

impl ContainerRuntime for FakeRuntime {
    type Handle = FakeHandle;

    async fn start(&self, spec: ContainerSpec) -> Result<FakeHandle, StartError> {
        let behavior = self.behavior(&spec.image);
        let image_id = format!("sha256:fake-{}", spec.image.len());
        if self.record_starts {
            lock(&self.started).push(spec);
        }
        if let Behavior::FailStart(e) = behavior {
            return Err(e);
        }
        let (signals, mut signal_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit) = watch::channel(None);
        let running = Arc::clone(&self.running);
        running.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let stops_on_request = behavior == Behavior::RunUntilTerminated;
            let (after, natural) = match behavior {
                Behavior::Exit { after, code } => (Some(after), ExitStatus::Exited { code }),
                Behavior::Trap { after, message } => (Some(after), ExitStatus::Trapped { message }),
                Behavior::OutOfMemory { after } => (Some(after), ExitStatus::OomKilled),
                Behavior::RunUntilKilled
                | Behavior::RunUntilTerminated
                | Behavior::FailStart(_) => (None, ExitStatus::Killed),
            };
            let timer = async {
                match after {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(timer);
            let status = loop {
                tokio::select! {
                    () = &mut timer => break natural,
                    signal = signal_rx.recv() => match signal {
                        Some(Signal::Kill) | None => break ExitStatus::Killed,
                        Some(Signal::Terminate) if stops_on_request => break ExitStatus::Exited { code: 0 },
                        Some(Signal::Terminate) => {}
                    },
                }
            };
            running.fetch_sub(1, Ordering::SeqCst);
            let _ = exit_tx.send(Some(status));
        });
        Ok(FakeHandle {
            signals,
            exit,
            image_id,
        })
    }
}

impl ContainerHandle for FakeHandle {
    async fn wait(&self) -> ExitStatus {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(status) => status.clone().unwrap_or(ExitStatus::Killed),
            // The container task ended without reporting: it is gone.
            Err(_) => ExitStatus::Killed,
        }
    }

    fn terminate(&self) {
        let _ = self.signals.send(Signal::Terminate);
    }

    fn kill(&self) {
        let _ = self.signals.send(Signal::Kill);
    }

    fn image_id(&self) -> String {
        self.image_id.clone()
    }
}
