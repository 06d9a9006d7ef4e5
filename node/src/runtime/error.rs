//! The one error type of the runtime's public API.

use std::path::PathBuf;

/// A boxed error from below the runtime (wasmtime's own error type does not
/// implement `std::error::Error`, so it is converted into this).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the runtime could not be built, a program not loaded, or an instance
/// not started.
///
/// Failures of a running instance are not errors: they are an
/// [`ExitStatus`](super::ExitStatus).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be configured (neither pooled nor on demand).
    #[error("cannot configure the WebAssembly engine")]
    Engine {
        #[source]
        source: BoxError,
    },
    /// The compiled-code cache directory is unusable.
    #[error("cannot use the compiled-code cache directory {path}")]
    CacheDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly module or component.
    #[error("not a WebAssembly module or component: {reason}")]
    InvalidImage { reason: String },
    /// The bytes look like WebAssembly but do not validate or compile.
    #[error("cannot compile the WebAssembly program")]
    Compile {
        #[source]
        source: BoxError,
    },
    /// The program imports something the node does not provide.
    #[error("the program's imports cannot be satisfied by the node")]
    Link {
        #[source]
        source: BoxError,
    },
    /// The program is not a command: a module without `_start`, or a
    /// component that does not export `wasi:cli/run`.
    #[error("the program is not a WASI command: {reason}")]
    NotACommand { reason: String },
    /// The instance could not be created on the node (for example the
    /// instance pool is full).
    #[error("cannot create the instance")]
    Instantiate {
        #[source]
        source: BoxError,
    },
    /// A volume mount's host directory cannot be opened.
    #[error("cannot mount host directory {host_path} at {guest_path}")]
    Mount {
        host_path: PathBuf,
        guest_path: String,
        #[source]
        source: BoxError,
    },
    /// Instances run as tokio tasks; `start` was called outside a tokio
    /// runtime.
    #[error("instances must be started from within a tokio runtime")]
    NoAsyncRuntime,
}

/// Converts wasmtime's error into a boxed standard error for `#[source]`.
pub(crate) fn boxed(error: wasmtime::Error) -> BoxError {
    error.into_boxed_dyn_error()
}
