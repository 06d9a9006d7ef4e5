//! The per-instance state wasmtime keeps in a store, and the hooks that
//! enforce an instance's limits and let it be killed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use wasmtime::{CallHook, Engine, Store, UpdateDeadline};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::http::HttpState;
use super::limits::{CpuBudget, CpuDecision, CpuMeter, MemoryLimiter};
use super::sockets::{SocketsCtx, SocketsView};

/// What a store holds for one instance: its WASI context (`W` is the
/// preview 1 or preview 2 flavour) and its limits.
pub(crate) struct HostState<W> {
    pub(crate) wasi: W,
    pub(crate) memory: MemoryLimiter,
    meter: CpuMeter,
    budget: Option<CpuBudget>,
    kill: Arc<KillSwitch>,
}

/// The WASI state of a preview 2 component.
pub(crate) struct P2Wasi {
    pub(crate) ctx: WasiCtx,
    pub(crate) table: ResourceTable,
    /// `wasi:http`'s state (see `http/`).
    pub(crate) http: HttpState,
    /// The pod network its `wasi:sockets` work on (see `sockets/`).
    pub(crate) sockets: SocketsCtx,
}

impl HostState<P2Wasi> {
    /// What the `wasi:sockets` host functions work on.
    pub(crate) fn sockets(&mut self) -> SocketsView<'_> {
        SocketsView {
            table: &mut self.wasi.table,
            ctx: &self.wasi.sockets,
        }
    }
}

impl WasiView for HostState<P2Wasi> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.ctx,
            table: &mut self.wasi.table,
        }
    }
}

/// The limits of one instance, as the store applies them.
pub(crate) struct Limits {
    pub(crate) memory_bytes: Option<u64>,
    pub(crate) cpu_millicores: Option<u64>,
    pub(crate) cpu_period: Duration,
}

impl<W: Send + 'static> HostState<W> {
    pub(crate) fn new(wasi: W, limits: &Limits, kill: Arc<KillSwitch>) -> HostState<W> {
        let budget = limits.cpu_millicores.and_then(|millicores| {
            let millicores = u32::try_from(millicores).unwrap_or(u32::MAX);
            CpuBudget::new(millicores, limits.cpu_period, Instant::now())
        });
        HostState {
            wasi,
            memory: MemoryLimiter::new(limits.memory_bytes),
            meter: CpuMeter::default(),
            budget,
            kill,
        }
    }

    /// Called by the engine at every epoch tick the guest runs into.
    fn on_epoch(&mut self) -> wasmtime::Result<UpdateDeadline> {
        if self.kill.is_killed() {
            return Err(Killed.into());
        }
        let used = self.meter.take_unbilled();
        let decision = match &mut self.budget {
            Some(budget) => budget.charge(used, Instant::now()),
            None => CpuDecision::Yield,
        };
        Ok(match decision {
            // Yielding at every tick is what keeps one busy guest from
            // starving the others sharing a worker thread.
            CpuDecision::Yield => UpdateDeadline::Yield(1),
            CpuDecision::Throttle(pause) => {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::time::sleep(pause)))
            }
        })
    }
}

/// A store for one instance, with its memory limiter, CPU accounting and
/// epoch handling installed.
pub(crate) fn new_store<W: Send + 'static>(
    engine: &Engine,
    state: HostState<W>,
) -> Store<HostState<W>> {
    let metered = state.budget.is_some();
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.memory);
    if metered {
        // Only instances with a CPU limit pay for the clock reads.
        store.call_hook(|mut context, hook| {
            let now = Instant::now();
            let meter = &mut context.data_mut().meter;
            match hook {
                CallHook::CallingWasm | CallHook::ReturningFromHost => meter.enter_guest(now),
                CallHook::CallingHost | CallHook::ReturningFromWasm => meter.leave_guest(now),
            }
            Ok(())
        });
    }
    store.epoch_deadline_callback(|mut context| context.data_mut().on_epoch());
    store.set_epoch_deadline(1);
    store
}

/// The error an instance's code fails with once it has been killed.
#[derive(Debug)]
pub(crate) struct Killed;

impl std::fmt::Display for Killed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the instance was killed")
    }
}

impl std::error::Error for Killed {}

/// Lets the owner of an instance end it: the epoch callback sees the flag
/// inside busy guest code, and the instance's task sees the signal while
/// the guest waits in the host (a sleep, a read).
#[derive(Debug)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    signal: watch::Sender<bool>,
}

impl Default for KillSwitch {
    fn default() -> KillSwitch {
        KillSwitch {
            killed: AtomicBool::new(false),
            signal: watch::Sender::new(false),
        }
    }
}

impl KillSwitch {
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.signal.send_replace(true);
    }

    pub(crate) fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Resolves once the instance has been killed.
    pub(crate) async fn killed(&self) {
        let mut receiver = self.signal.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = receiver.wait_for(|killed| *killed).await;
    }
}
