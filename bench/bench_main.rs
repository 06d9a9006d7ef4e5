//! The `main` every benchmark shares. `cargo bench` passes `--bench` and
//! the benchmark runs on a tokio runtime; `cargo test --all-targets` runs
//! the binary without it, to check that it builds, and measures nothing.

use std::future::Future;
use std::process::ExitCode;

/// What a benchmark's run ends with: `()`, or whether every figure could
/// be measured.
pub trait Outcome {
    fn succeeded(&self) -> bool;
}

impl Outcome for () {
    fn succeeded(&self) -> bool {
        true
    }
}

impl Outcome for bool {
    fn succeeded(&self) -> bool {
        *self
    }
}

/// Runs `bench` when asked to measure. `log_filter` is the default
/// `RUST_LOG` of a benchmark that reports progress through `tracing`.
pub fn run<F, T>(name: &str, log_filter: Option<&str>, bench: impl FnOnce() -> F) -> ExitCode
where
    F: Future<Output = anyhow::Result<T>>,
    T: Outcome,
{
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("run with `cargo bench --bench {name}` to measure");
        return ExitCode::SUCCESS;
    }
    if let Some(filter) = log_filter {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| filter.into()),
            )
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starting the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench()) {
        Ok(outcome) if outcome.succeeded() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
