//! Turns the bytes of a WebAssembly program into something ready to start:
//! recognised, validated, compiled (or loaded from the compiled cache),
//! linked against WASI and checked to be a command.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, InstancePre, Module};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::cache::{self, CompiledCache};
use super::error::{RuntimeError, boxed};
use super::store::{HostState, P2Wasi};

/// The magic number every WebAssembly binary starts with.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// The layer field of a core module's header (bytes 6..8, little endian).
const LAYER_MODULE: u16 = 0;
/// The layer field of a component's header.
const LAYER_COMPONENT: u16 = 1;
/// The only core module version there is.
const MODULE_VERSION: u16 = 1;

/// Which kind of WASI program a [`Program`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    /// A core module for WASI preview 1, entered at `_start`.
    Module,
    /// A component exporting `wasi:cli/run` (WASI preview 2).
    Component,
    /// A component exporting `wasi:http/incoming-handler` and not
    /// `wasi:cli/run`: served over HTTP, one instance per request.
    HttpHandler,
}

/// A program ready to start: compiled, linked, cheap to clone.
#[derive(Clone)]
pub struct Program {
    inner: Arc<ProgramInner>,
}

pub(crate) struct ProgramInner {
    digest: String,
    ready: Ready,
}

/// A program pre-instantiated against the node's WASI linker, so that
/// starting an instance does no import resolution.
pub(crate) enum Ready {
    Module(InstancePre<HostState<WasiP1Ctx>>),
    Component(CommandPre<HostState<P2Wasi>>),
    Http(ProxyPre<HostState<P2Wasi>>),
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("digest", &self.inner.digest)
            .field("kind", &self.kind())
            .finish()
    }
}

impl Program {
    /// The digest of the program's bytes, `sha256:<hex>` (the `imageID`).
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    pub fn kind(&self) -> ProgramKind {
        match self.inner.ready {
            Ready::Module(_) => ProgramKind::Module,
            Ready::Component(_) => ProgramKind::Component,
            Ready::Http(_) => ProgramKind::HttpHandler,
        }
    }

    pub(crate) fn ready(&self) -> &Ready {
        &self.inner.ready
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<ProgramInner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn from_inner(inner: Arc<ProgramInner>) -> Program {
        Program { inner }
    }
}

/// Recognises a WebAssembly binary by its header. Anything else, including
/// the text format and precompiled artifacts, is not an image.
pub(crate) fn detect(bytes: &[u8]) -> Result<ProgramKind, RuntimeError> {
    let invalid = |reason: &str| RuntimeError::InvalidImage {
        reason: reason.to_owned(),
    };
    if bytes.len() < 8 {
        return Err(invalid("shorter than a WebAssembly header"));
    }
    if &bytes[..4] != WASM_MAGIC {
        return Err(invalid("missing the \\0asm magic number"));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    match u16::from_le_bytes([bytes[6], bytes[7]]) {
        LAYER_MODULE if version == MODULE_VERSION => Ok(ProgramKind::Module),
        LAYER_MODULE => Err(invalid("unsupported core module version")),
        LAYER_COMPONENT => Ok(ProgramKind::Component),
        _ => Err(invalid("unknown binary layer")),
    }
}

/// The hex sha256 of the bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    cache::hex(&Sha256::digest(bytes))
}

/// Where a program's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Compiled,
    DiskCache,
}

/// The linkers programs are pre-instantiated against.
pub(crate) struct Linkers {
    pub(crate) module: wasmtime::Linker<HostState<WasiP1Ctx>>,
    pub(crate) component: wasmtime::component::Linker<HostState<P2Wasi>>,
}

impl Linkers {
    pub(crate) fn new(engine: &Engine) -> Result<Linkers, RuntimeError> {
        let engine_error = |error| RuntimeError::Engine {
            source: boxed(error),
        };
        let mut module = wasmtime::Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut module, |state: &mut HostState<WasiP1Ctx>| {
            &mut state.wasi
        })
        .map_err(engine_error)?;
        let mut component = wasmtime::component::Linker::new(engine);
        add_wasi_p2(&mut component).map_err(engine_error)?;
        super::http::add_to_linker(&mut component).map_err(engine_error)?;
        Ok(Linkers { module, component })
    }
}

/// Marks the resource table as the data of the `wasi:io` bindings.
struct HasIo;

impl wasmtime::component::HasData for HasIo {
    type Data<'a> = &'a mut wasmtime_wasi::ResourceTable;
}

/// Adds WASI preview 2 to the component linker: every interface of
/// wasmtime-wasi's `add_to_linker_async` but its sockets, which are the
/// node's own, over the pod network (`sockets/`).
fn add_wasi_p2(
    linker: &mut wasmtime::component::Linker<HostState<P2Wasi>>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
    type State = HostState<P2Wasi>;

    let l = linker;
    io::error::add_to_linker::<State, HasIo>(l, |state| &mut state.wasi.table)?;
    io::poll::add_to_linker::<State, HasIo>(l, |state| &mut state.wasi.table)?;
    io::streams::add_to_linker::<State, HasIo>(l, |state| &mut state.wasi.table)?;
    clocks::wall_clock::add_to_linker::<State, WasiClocks>(l, State::clocks)?;
    clocks::monotonic_clock::add_to_linker::<State, WasiClocks>(l, State::clocks)?;
    filesystem::preopens::add_to_linker::<State, WasiFilesystem>(l, State::filesystem)?;
    filesystem::types::add_to_linker::<State, WasiFilesystem>(l, State::filesystem)?;
    random::random::add_to_linker::<State, WasiRandom>(l, State::random)?;
    random::insecure::add_to_linker::<State, WasiRandom>(l, State::random)?;
    random::insecure_seed::add_to_linker::<State, WasiRandom>(l, State::random)?;
    cli::exit::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::environment::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::stdin::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::stdout::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::stderr::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_input::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_output::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_stdin::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_stdout::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_stderr::add_to_linker::<State, WasiCli>(l, State::cli)?;
    super::sockets::add_to_linker(l, State::sockets)
}

/// Compiles a program, or loads its code from the cache, and links it.
pub(crate) fn prepare(
    engine: &Engine,
    linkers: &Linkers,
    cache: &CompiledCache,
    kind: ProgramKind,
    sha256: &str,
    bytes: &[u8],
) -> Result<(Program, Origin), RuntimeError> {
    let path = cache.path(sha256);
    let (ready, origin) = match kind {
        ProgramKind::Module => {
            let (module, origin) = cached_or_compiled(
                cache,
                &path,
                |path| cache::trusted::load_module(engine, path),
                || Module::new(engine, bytes),
                Module::serialize,
            )?;
            (link_module(linkers, &module)?, origin)
        }
        ProgramKind::Component | ProgramKind::HttpHandler => {
            let (component, origin) = cached_or_compiled(
                cache,
                &path,
                |path| cache::trusted::load_component(engine, path),
                || Component::new(engine, bytes),
                Component::serialize,
            )?;
            (link_component(linkers, &component)?, origin)
        }
    };
    let inner = ProgramInner {
        digest: format!("sha256:{sha256}"),
        ready,
    };
    Ok((Program::from_inner(Arc::new(inner)), origin))
}

fn cached_or_compiled<C>(
    cache: &CompiledCache,
    path: &Path,
    load: impl FnOnce(&Path) -> wasmtime::Result<C>,
    compile: impl FnOnce() -> wasmtime::Result<C>,
    serialize: impl FnOnce(&C) -> wasmtime::Result<Vec<u8>>,
) -> Result<(C, Origin), RuntimeError> {
    if path.exists() {
        match load(path) {
            Ok(code) => return Ok((code, Origin::DiskCache)),
            Err(error) => {
                // A file from another engine build or a damaged disk: compile
                // again and replace it.
                tracing::warn!(path = %path.display(), error = %error, "ignoring unusable compiled-code cache entry");
                cache.discard(path);
            }
        }
    }
    let code = compile().map_err(|error| RuntimeError::Compile {
        source: boxed(error),
    })?;
    match serialize(&code) {
        Ok(compiled) => cache.store(path, &compiled),
        Err(error) => tracing::warn!(error = %error, "cannot serialize compiled code"),
    }
    Ok((code, Origin::Compiled))
}

fn link_module(linkers: &Linkers, module: &Module) -> Result<Ready, RuntimeError> {
    let has_start = module
        .get_export("_start")
        .and_then(|export| export.func().cloned())
        .is_some_and(|func| func.params().len() == 0 && func.results().len() == 0);
    if !has_start {
        return Err(RuntimeError::NotACommand {
            reason: "the module does not export a `_start` function".to_owned(),
        });
    }
    let pre = linkers
        .module
        .instantiate_pre(module)
        .map_err(|error| RuntimeError::Link {
            source: boxed(error),
        })?;
    Ok(Ready::Module(pre))
}

fn link_component(linkers: &Linkers, component: &Component) -> Result<Ready, RuntimeError> {
    let pre = linkers
        .component
        .instantiate_pre(component)
        .map_err(|error| RuntimeError::Link {
            source: boxed(error),
        })?;
    match CommandPre::new(pre.clone()) {
        Ok(command) => Ok(Ready::Component(command)),
        Err(error) => match super::http::handler(pre) {
            Some(proxy) => Ok(Ready::Http(proxy)),
            None => Err(RuntimeError::NotACommand {
                reason: format!("{error:#}; nor does it export `wasi:http/incoming-handler`"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tells_module_from_component() {
        let module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        let component = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        assert_eq!(detect(&module).expect("module"), ProgramKind::Module);
        assert_eq!(
            detect(&component).expect("component"),
            ProgramKind::Component
        );
    }

    #[test]
    fn non_wasm_bytes_are_invalid_images() {
        for bytes in [
            &b""[..],
            b"\0asm",
            b"(module)",
            b"\x7fELF\x02\x01\x01\x00\x00\x00",
            b"\0asm\x02\x00\x00\x00",
            b"\0asm\x01\x00\x02\x00",
        ] {
            assert!(
                matches!(detect(bytes), Err(RuntimeError::InvalidImage { .. })),
                "{bytes:?}"
            );
        }
    }
}
