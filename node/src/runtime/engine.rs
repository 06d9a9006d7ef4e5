//! Builds the one wasmtime engine of a node and drives its epoch clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::error::{RuntimeError, boxed};
use super::{PoolingChoice, RuntimeConfig};

/// Core instances reserved per pool slot: a component made by
/// `wit-component` holds its main module plus a few shim modules.
const CORE_INSTANCES_PER_SLOT: u32 = 4;
/// Linear memories reserved per pool slot: the main module's, and one for a
/// preview 1 adapter when a component carries it.
const MEMORIES_PER_SLOT: u32 = 2;
/// Tables reserved per pool slot (one per core instance).
const TABLES_PER_SLOT: u32 = CORE_INSTANCES_PER_SLOT;

/// Builds the engine, trying the pooling allocator first when asked to.
/// Returns the engine and whether it pools.
pub(crate) fn build_engine(config: &RuntimeConfig) -> Result<(Engine, bool), RuntimeError> {
    match config.pooling {
        PoolingChoice::Off => Ok((on_demand_engine()?, false)),
        PoolingChoice::On => pooled_engine(config.pool_slots).map(|engine| (engine, true)),
        PoolingChoice::Auto => match pooled_engine(config.pool_slots) {
            Ok(engine) => Ok((engine, true)),
            Err(error) => {
                // Hosts with little address space, or an address-space
                // ulimit, cannot reserve the pool; on-demand allocation still
                // works there, only instantiation is slower.
                tracing::info!(
                    error = %error_chain(&error),
                    "pooling allocator unavailable, allocating instances on demand"
                );
                Ok((on_demand_engine()?, false))
            }
        },
    }
}

/// The settings every engine of the node shares, whatever its allocator.
fn base_config() -> Config {
    let mut config = Config::new();
    // Epoch interruption is what lets busy guests yield, be throttled to
    // their CPU limit, and be killed inside a loop.
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config
}

fn on_demand_engine() -> Result<Engine, RuntimeError> {
    Engine::new(&base_config()).map_err(|error| RuntimeError::Engine {
        source: boxed(error),
    })
}

fn pooled_engine(slots: u32) -> Result<Engine, RuntimeError> {
    let slots = slots.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_SLOT))
        .total_memories(slots.saturating_mul(MEMORIES_PER_SLOT))
        .total_tables(slots.saturating_mul(TABLES_PER_SLOT))
        .total_stacks(slots);
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // The pool reserves its whole address space here, so a host that cannot
    // afford it fails now rather than at the first instantiation.
    Engine::new(&config).map_err(|error| RuntimeError::Engine {
        source: boxed(error),
    })
}

/// Renders an error with its causes on one line, for logs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A thread that advances the engine's epoch every tick until dropped.
///
/// Every store's epoch deadline is one tick ahead, so each tick gives every
/// running guest a chance to yield, be throttled or be killed.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> Result<EpochTicker, RuntimeError> {
        // A zero tick would spin a core for nothing.
        let tick = tick.max(Duration::from_millis(1));
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".to_owned())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|error| RuntimeError::Engine {
                source: Box::new(error),
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.join().is_err() {
                tracing::warn!("epoch ticker thread panicked");
            }
        }
    }
}
