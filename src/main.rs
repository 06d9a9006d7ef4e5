//! `wasmpod`: one binary for the control plane, the node daemon and the
//! tools around them.

mod data_dir;
mod kubeconfig;
mod server_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wasmpod",
    version,
    about = "A Kubernetes-style orchestrator whose pods are WebAssembly modules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server and store).
    Server(ServerArgs),
    /// Run an all-in-one cluster and write an admin kubeconfig.
    Up(UpArgs),
    /// Print the admin kubeconfig of a data dir.
    Kubeconfig(KubeconfigArgs),
}

#[derive(Args, Clone)]
struct DataDirArg {
    /// State directory (SQLite database, kubeconfig).
    #[arg(long, env = "WASMPOD_DATA_DIR", default_value = ".wasmpod")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ServerArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Datastore URL: sqlite://PATH or postgres://USER@HOST:PORT/DB. Default: SQLite at <data-dir>/state.db.
    #[arg(long, env = "WASMPOD_DATASTORE")]
    datastore: Option<String>,
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Watch events kept in memory; older revisions get 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    watch_window: usize,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
}

#[derive(Args)]
struct KubeconfigArgs {
    #[command(flatten)]
    data: DataDirArg,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Kubeconfig(args) => {
            let text = kubeconfig::read(&args.data.data_dir)?;
            print!("{text}");
            Ok(())
        }
        Command::Server(args) => runtime()?.block_on(server_cmd::run(server_cmd::Options {
            data_dir: args.data.data_dir,
            datastore: args.datastore,
            listen: args.listen,
            watch_window: args.watch_window,
            announce: false,
        })),
        Command::Up(args) => runtime()?.block_on(server_cmd::run(server_cmd::Options {
            data_dir: args.data.data_dir,
            datastore: None,
            listen: args.listen,
            watch_window: 10_000,
            announce: true,
        })),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
