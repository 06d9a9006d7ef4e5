//! The container runtime of the node: runs WASI programs with wasmtime,
//! unaware of the Kubernetes API.
//!
//! ```text
//! Runtime::new(RuntimeConfig)          one engine, one epoch ticker thread
//!   .load(&bytes)   -> Program         validate + compile, or load cached code
//!   .start(&Program, InstanceSpec).await -> Instance
//! Instance.wait().await -> ExitStatus  Exit{code} | Trap{message} | OomKilled | Killed
//! Instance.kill()                      ends it, even inside a busy loop
//! ```
//!
//! - Programs are WASI preview 1 core modules (run from `_start`) or
//!   preview 2 components (run through `wasi:cli/run`); the header tells
//!   which. Anything else is [`RuntimeError::InvalidImage`]. A component
//!   exporting `wasi:http/incoming-handler` instead of `wasi:cli/run` is an
//!   HTTP service (`http/`): its instance serves the spec's ports on the pod
//!   network until killed, instantiating the component once per request.
//! - [`Runtime::load`] compiles at most once per node: compiled code is kept
//!   on disk (`cache.rs`) keyed by the program's sha256 and the engine's
//!   compatibility hash, and programs already loaded are shared in memory.
//!   Compiling is CPU-heavy and blocking: call `load` from
//!   `tokio::task::spawn_blocking`. Two concurrent first loads of one
//!   program may both compile it. [`Runtime::stats`] counts compilations
//!   and cache hits.
//! - [`Runtime::start`] builds the instance's WASI context (`wasi.rs`: the
//!   one place where capabilities are granted), instantiates the program and
//!   runs it as a tokio task. Limits are described in `limits.rs`: memory
//!   beyond `memory_limit_bytes` ends the instance as `OomKilled`; a CPU limit
//!   throttles the guest to its share; every guest yields at every epoch tick
//!   so that no instance starves the others.
//! - An instance's stdout and stderr go to size-bounded [`LogFile`]s in the
//!   CRI log format (`log_format`), each stream through its own [`LogStream`].
//!   Dropping an [`Instance`] kills it, so no guest outlives its handle.
//! - The engine uses wasmtime's pooling allocator when the host can reserve
//!   its address space ([`PoolingChoice::Auto`]), and allocates on demand
//!   otherwise.
//! - Preview 2 components get `wasi:sockets` over their pod's virtual
//!   network (`sockets/`, `InstanceSpec::network`): TCP and name lookup;
//!   UDP is not supported yet. Without a network every socket is denied.
//!   Preview 1 modules have no sockets.

mod cache;
mod engine;
mod error;
mod http;
mod instance;
mod limits;
pub mod log_format;
mod logs;
mod program;
mod sockets;
mod store;
mod wasi;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use wasmtime::Engine;

use cache::CompiledCache;
use engine::EpochTicker;
use program::{Linkers, Origin, ProgramInner};

pub use error::{BoxError, RuntimeError};
pub use instance::{ExitStatus, Instance, InstanceSpec};
pub use logs::{LogFile, LogRegistry, LogStream, rotated_path};
pub use program::{Program, ProgramKind};
pub use wasi::Mount;

/// Whether the engine pre-reserves instance slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolingChoice {
    /// Pool when the host can reserve the address space, else on demand.
    #[default]
    Auto,
    /// Pool, or fail to build the runtime.
    On,
    /// Allocate every instance on demand.
    Off,
}

/// How the node's runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled code is cached.
    pub cache_dir: PathBuf,
    pub pooling: PoolingChoice,
    /// How many instances the pool holds at once (when pooling). Each slot
    /// reserves address space (about 8 GiB of it, not memory).
    pub pool_slots: u32,
    /// How often the engine's epoch advances: the granularity of yielding,
    /// CPU accounting and killing busy guests.
    pub epoch_tick: Duration,
    /// The period a CPU limit is expressed over: an instance limited to `m`
    /// millicores may use `period * m / 1000` at once after being idle.
    pub cpu_period: Duration,
    /// How long one request to an HTTP component may run before it is
    /// ended and answered `504 Gateway Timeout`.
    pub http_request_timeout: Duration,
}

impl RuntimeConfig {
    /// The defaults, with compiled code cached in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: cache_dir.into(),
            pooling: PoolingChoice::Auto,
            pool_slots: 1000,
            epoch_tick: Duration::from_millis(10),
            cpu_period: Duration::from_millis(100),
            http_request_timeout: Duration::from_secs(60),
        }
    }
}

/// Counters of what [`Runtime::load`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuntimeStats {
    /// Programs compiled from their bytes.
    pub compiled: u64,
    /// Programs whose compiled code came from the on-disk cache.
    pub disk_cache_hits: u64,
    /// Loads answered by a program already loaded in this process.
    pub memory_hits: u64,
}

/// The node's WebAssembly runtime. Cheap to clone; clones share one engine.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

/// What every clone of a runtime, and every running instance, shares. The
/// epoch ticker stops when the last of them is gone.
pub(crate) struct Shared {
    engine: Engine,
    linkers: Linkers,
    cache: CompiledCache,
    pooling: bool,
    cpu_period: Duration,
    http_request_timeout: Duration,
    /// Programs by sha256, for as long as someone holds them.
    programs: Mutex<HashMap<String, Weak<ProgramInner>>>,
    /// One gate per digest being loaded, so pods starting the same module
    /// at once wait for one compilation instead of each compiling it.
    loading: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    compiled: AtomicU64,
    disk_cache_hits: AtomicU64,
    memory_hits: AtomicU64,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("pooling", &self.shared.pooling)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Runtime {
    /// Configures the engine (once per node) and starts its epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let (engine, pooling) = engine::build_engine(&config)?;
        let linkers = Linkers::new(&engine)?;
        let cache = CompiledCache::open(config.cache_dir.clone(), &engine)?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)?;
        tracing::debug!(pooling, cache_dir = %config.cache_dir.display(), "wasm runtime ready");
        Ok(Runtime {
            shared: Arc::new(Shared {
                engine,
                linkers,
                cache,
                pooling,
                cpu_period: config.cpu_period,
                http_request_timeout: config.http_request_timeout,
                programs: Mutex::new(HashMap::new()),
                loading: Mutex::new(HashMap::new()),
                compiled: AtomicU64::new(0),
                disk_cache_hits: AtomicU64::new(0),
                memory_hits: AtomicU64::new(0),
                _ticker: ticker,
            }),
        })
    }

    /// Whether instances come from the pooling allocator.
    pub fn uses_pooling(&self) -> bool {
        self.shared.pooling
    }

    /// What [`load`](Runtime::load) has done so far.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            compiled: self.shared.compiled.load(Ordering::Relaxed),
            disk_cache_hits: self.shared.disk_cache_hits.load(Ordering::Relaxed),
            memory_hits: self.shared.memory_hits.load(Ordering::Relaxed),
        }
    }

    /// Validates, compiles (or loads cached code for) and links a module or
    /// component. Blocking; see the module documentation.
    pub fn load(&self, bytes: &[u8]) -> Result<Program, RuntimeError> {
        let kind = program::detect(bytes)?;
        let sha256 = program::sha256_hex(bytes);
        if let Some(program) = self.loaded(&sha256) {
            self.shared.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(program);
        }
        let gate = self.gate(&sha256);
        let result = {
            let _loading = gate.lock().unwrap_or_else(PoisonError::into_inner);
            match self.loaded(&sha256) {
                Some(program) => {
                    // Another start loaded it while this one waited.
                    self.shared.memory_hits.fetch_add(1, Ordering::Relaxed);
                    Ok(program)
                }
                None => self.prepare(kind, sha256.clone(), bytes),
            }
        };
        let mut loading = self.loading();
        // The map's reference and this one: nobody else waits.
        if Arc::strong_count(&gate) <= 2 {
            loading.remove(&sha256);
        }
        result
    }

    /// The gate of `sha256`'s load.
    fn gate(&self, sha256: &str) -> Arc<Mutex<()>> {
        Arc::clone(self.loading().entry(sha256.to_string()).or_default())
    }

    fn loading(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<()>>>> {
        // The map holds only gates; it is valid after any panic.
        self.shared
            .loading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Compiles (or loads the cached code of) a program not in memory.
    fn prepare(
        &self,
        kind: ProgramKind,
        sha256: String,
        bytes: &[u8],
    ) -> Result<Program, RuntimeError> {
        let shared = &self.shared;
        let began = std::time::Instant::now();
        let (program, origin) = program::prepare(
            &shared.engine,
            &shared.linkers,
            &shared.cache,
            kind,
            &sha256,
            bytes,
        )?;
        let counter = match origin {
            Origin::Compiled => &shared.compiled,
            Origin::DiskCache => &shared.disk_cache_hits,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            digest = program.digest(),
            ?kind,
            ?origin,
            millis = began.elapsed().as_millis() as u64,
            "program loaded"
        );
        let mut programs = self.programs();
        programs.retain(|_, program| program.strong_count() > 0);
        programs.insert(sha256, program.downgrade());
        Ok(program)
    }

    /// Starts an instance of `program` as a tokio task; must be called from
    /// within a tokio runtime. Resolves once the instance is created. A
    /// guest failing during instantiation (a trapping start function, an
    /// initial memory over the limit) still yields an [`Instance`], already
    /// ended; the node failing to create it (an unusable mount, a full
    /// instance pool) is an error.
    pub async fn start(
        &self,
        program: &Program,
        spec: InstanceSpec,
    ) -> Result<Instance, RuntimeError> {
        instance::start(Arc::clone(&self.shared), program, spec).await
    }

    /// For an HTTP component ([`ProgramKind::HttpHandler`]): the mean time,
    /// over `count` rounds, to create and drop the store and instance one
    /// request gets, which is the node's own cost per request. `None` for
    /// other programs. For benchmarks and diagnostics.
    pub async fn mean_http_instantiation(
        &self,
        program: &Program,
        count: u32,
    ) -> Result<Option<Duration>, RuntimeError> {
        match program.ready() {
            program::Ready::Http(pre) => http::mean_instantiation(&self.shared, pre, count)
                .await
                .map(Some),
            _ => Ok(None),
        }
    }

    fn loaded(&self, sha256: &str) -> Option<Program> {
        let programs = self.programs();
        programs.get(sha256)?.upgrade().map(Program::from_inner)
    }

    fn programs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<ProgramInner>>> {
        // The map holds only weak references; it is valid after any panic.
        self.shared
            .programs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
