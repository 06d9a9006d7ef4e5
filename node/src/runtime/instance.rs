//! Starting a program as an instance, running it on tokio, and reporting
//! how it ended.

use std::sync::Arc;

use tokio::sync::watch;
use wasmtime::{Store, Trap};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p2::bindings::Command;

use super::Shared;
use super::error::{RuntimeError, boxed};
use super::limits::MemoryLimitExceeded;
use super::logs::LogStream;
use super::program::{Program, Ready};
use super::store::{self, HostState, KillSwitch, Killed, Limits};
use super::wasi::{self, Mount};

/// How to run one instance of a program (one container of a pod).
#[derive(Debug, Clone, Default)]
pub struct InstanceSpec {
    /// The full argv, `argv[0]` included.
    pub args: Vec<String>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// Directories preopened for the guest.
    pub mounts: Vec<Mount>,
    /// The guest's initial working directory (preview 2 programs).
    pub working_dir: Option<String>,
    /// Where stdout goes; `None` discards it.
    pub stdout: Option<LogStream>,
    /// Where stderr goes; `None` discards it. May write the stdout file.
    pub stderr: Option<LogStream>,
    /// The cap on the instance's linear memory, in bytes.
    pub memory_limit_bytes: Option<u64>,
    /// The instance's CPU budget, in millicores.
    pub cpu_limit_millicores: Option<u64>,
    /// The pod's virtual network; `None` leaves the instance without one.
    pub network: Option<crate::network::PodNetwork>,
    /// The ports an HTTP component is served on (a container's
    /// `containerPort`s); ignored by commands.
    pub ports: Vec<u16>,
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// The program returned or exited with this code (0 is success).
    Exit { code: i32 },
    /// The program trapped: an `unreachable`, an out-of-bounds access, a
    /// stack overflow, a failed host call.
    Trap { message: String },
    /// The program asked for more memory than its limit.
    OomKilled,
    /// The instance was ended by [`Instance::kill`].
    Killed,
}

impl ExitStatus {
    /// The exit code a container runtime reports for this ending: the
    /// program's own code, or what a Linux process would report when ended
    /// by the matching signal (SIGABRT for a trap, SIGKILL otherwise).
    pub fn exit_code(&self) -> i32 {
        match self {
            ExitStatus::Exit { code } => *code,
            ExitStatus::Trap { .. } => 134,
            ExitStatus::OomKilled | ExitStatus::Killed => 137,
        }
    }
}

/// A started instance. Dropping it kills the instance.
#[derive(Debug)]
pub struct Instance {
    pub(super) status: watch::Receiver<Option<ExitStatus>>,
    kill: Arc<KillSwitch>,
    digest: String,
}

impl Instance {
    /// Resolves when the instance has ended; may be awaited again, and from
    /// several tasks, and then returns the same status.
    pub async fn wait(&self) -> ExitStatus {
        let mut status = self.status.clone();
        match status.wait_for(Option::is_some).await {
            Ok(ended) => ended.clone().unwrap_or_else(lost_instance),
            Err(_) => lost_instance(),
        }
    }

    /// The status, if the instance has ended.
    pub fn try_status(&self) -> Option<ExitStatus> {
        self.status.borrow().clone()
    }

    /// Ends the instance now, even inside a busy loop or a blocking host
    /// call; [`wait`](Instance::wait) then resolves with
    /// [`ExitStatus::Killed`] unless the instance had already ended.
    pub fn kill(&self) {
        self.kill.kill();
    }

    /// The digest of the program this instance runs.
    pub fn program_digest(&self) -> &str {
        &self.digest
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill.kill();
    }
}

/// The status of an instance whose task ended without reporting, which only
/// a panic in the host can cause.
fn lost_instance() -> ExitStatus {
    ExitStatus::Trap {
        message: "the node stopped running the instance".to_owned(),
    }
}

/// Creates the instance's WASI context and store, instantiates the program
/// and spawns the task that runs it.
pub(crate) async fn start(
    shared: Arc<Shared>,
    program: &Program,
    spec: InstanceSpec,
) -> Result<Instance, RuntimeError> {
    let tokio = tokio::runtime::Handle::try_current().map_err(|_| RuntimeError::NoAsyncRuntime)?;
    let mut wasi = wasi::context(&spec)?;
    let limits = Limits {
        memory_bytes: spec.memory_limit_bytes,
        cpu_millicores: spec.cpu_limit_millicores,
        cpu_period: shared.cpu_period,
    };
    let kill = Arc::new(KillSwitch::default());
    let (report, status) = watch::channel(None);
    let instance = Instance {
        status,
        kill: Arc::clone(&kill),
        digest: program.digest().to_owned(),
    };
    match program.ready() {
        Ready::Module(pre) => {
            let state = HostState::new(wasi.build_p1(), &limits, Arc::clone(&kill));
            let mut store = store::new_store(&shared.engine, state);
            let entry = match pre.instantiate_async(&mut store).await {
                Ok(guest) => guest.get_typed_func::<(), ()>(&mut store, "_start"),
                Err(error) => return ended_at_start(&store, error, instance, &report),
            };
            let entry = entry.map_err(|error| RuntimeError::NotACommand {
                reason: format!("{error:#}"),
            })?;
            tokio.spawn(run_to_end(
                shared,
                store,
                kill,
                report,
                async move |store| entry.call_async(store, ()).await.map(|()| 0),
            ));
        }
        Ready::Component(pre) => {
            let p2 = wasi::p2_state(wasi, &spec);
            let state = HostState::new(p2, &limits, Arc::clone(&kill));
            let mut store = store::new_store(&shared.engine, state);
            let command: Command = match pre.instantiate_async(&mut store).await {
                Ok(command) => command,
                Err(error) => return ended_at_start(&store, error, instance, &report),
            };
            tokio.spawn(run_to_end(
                shared,
                store,
                kill,
                report,
                async move |store| {
                    let result = command.wasi_cli_run().call_run(store).await;
                    // `run` returns a bare error when the program fails without
                    // an exit code; a command's usual code for that is 1.
                    result.map(|outcome| if outcome.is_ok() { 0 } else { 1 })
                },
            ));
        }
        Ready::Http(pre) => {
            super::http::start(shared, pre.clone(), spec, kill, report);
        }
    }
    Ok(instance)
}

/// The body of an instance's task: runs the guest's entry point until it
/// ends or is killed, and reports how it ended. A kill drops the guest's
/// future wherever it is suspended, which unwinds it.
async fn run_to_end<W: Send + 'static>(
    shared: Arc<Shared>,
    mut store: Store<HostState<W>>,
    kill: Arc<KillSwitch>,
    report: watch::Sender<Option<ExitStatus>>,
    entry: impl AsyncFnOnce(&mut Store<HostState<W>>) -> wasmtime::Result<i32>,
) {
    let ended = tokio::select! {
        biased;
        () = kill.killed() => None,
        result = entry(&mut store) => Some(result),
    };
    let status = match ended {
        None => ExitStatus::Killed,
        Some(result) => classify(&store, result, kill.is_killed()),
    };
    report.send_replace(Some(status));
    // The store goes before the runtime: its instance may be the last user
    // of the engine's epoch ticker.
    drop(store);
    drop(shared);
}

/// Tells how a guest's run ended from its result and its store.
fn classify<W>(
    store: &Store<HostState<W>>,
    result: wasmtime::Result<i32>,
    killed: bool,
) -> ExitStatus {
    let error = match result {
        Ok(code) => return ExitStatus::Exit { code },
        Err(error) => error,
    };
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return ExitStatus::Exit { code: exit.0 };
    }
    if killed || error.downcast_ref::<Killed>().is_some() {
        return ExitStatus::Killed;
    }
    if store.data().memory.exceeded() || error.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return ExitStatus::OomKilled;
    }
    ExitStatus::Trap {
        message: format!("{error:#}"),
    }
}

/// An instantiation that failed: the guest's fault (its start function
/// trapped, its initial memory is over the limit) ends the instance at once;
/// the host's (for example a full instance pool) is an error.
fn ended_at_start<W>(
    store: &Store<HostState<W>>,
    error: wasmtime::Error,
    instance: Instance,
    report: &watch::Sender<Option<ExitStatus>>,
) -> Result<Instance, RuntimeError> {
    let status = if store.data().memory.exceeded() {
        ExitStatus::OomKilled
    } else if error.downcast_ref::<Trap>().is_some() || error.downcast_ref::<I32Exit>().is_some() {
        classify(store, Err(error), false)
    } else {
        return Err(RuntimeError::Instantiate {
            source: boxed(error),
        });
    };
    report.send_replace(Some(status));
    Ok(instance)
}
