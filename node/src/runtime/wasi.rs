//! Builds an instance's WASI context from its [`InstanceSpec`], in one place.
//!
//! Everything is denied unless the spec grants it:
//! - arguments and environment are exactly the spec's (nothing inherited
//!   from the node);
//! - stdin is closed; stdout and stderr go to the spec's log files, or
//!   nowhere;
//! - the filesystem is the spec's mounts and nothing else; a read-only mount
//!   opens files and directories read-only; paths (including `..` and
//!   symbolic links) cannot leave a mount;
//! - clocks and random numbers are the host's;
//! - wasmtime-wasi's own sockets (host sockets) are denied; preview 2
//!   components get `wasi:sockets` over the spec's pod network instead
//!   (`sockets/`), and none at all without one.

use std::path::PathBuf;

use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtxBuilder};

use super::error::{RuntimeError, boxed};
use super::http::HttpState;
use super::instance::InstanceSpec;
use super::sockets::SocketsCtx;
use super::store::P2Wasi;

/// A host directory made visible to the guest (a pod's `volumeMount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory on the node.
    pub host_path: PathBuf,
    /// Where the guest sees it, e.g. `/data`.
    pub guest_path: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}

/// The WASI context builder for one instance.
pub(crate) fn context(spec: &InstanceSpec) -> Result<WasiCtxBuilder, RuntimeError> {
    let mut builder = WasiCtxBuilder::new();
    builder.args(&spec.args).envs(&spec.env);
    if let Some(dir) = &spec.working_dir {
        builder.initial_cwd(dir);
    }
    if let Some(stdout) = &spec.stdout {
        builder.stdout(stdout.clone());
    }
    if let Some(stderr) = &spec.stderr {
        builder.stderr(stderr.clone());
    }
    for mount in &spec.mounts {
        let perms = if mount.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&mount.host_path, &mount.guest_path, perms)
            .map_err(|error| RuntimeError::Mount {
                host_path: mount.host_path.clone(),
                guest_path: mount.guest_path.clone(),
                source: boxed(error),
            })?;
    }
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    Ok(builder)
}

/// The state of a preview 2 component built from `builder` (made by
/// [`context`] from the same spec): WASI, its resource table, and
/// `wasi:http` and `wasi:sockets` over the spec's pod network.
pub(crate) fn p2_state(mut builder: WasiCtxBuilder, spec: &InstanceSpec) -> P2Wasi {
    P2Wasi {
        ctx: builder.build(),
        table: ResourceTable::new(),
        http: HttpState::new(spec.network.clone()),
        sockets: SocketsCtx::new(spec.network.clone()),
    }
}
