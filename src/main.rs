//! `wasmpod`: one binary for the control plane, the node daemon and the
//! tools around them.

mod data_dir;
mod examples;
mod hollow_cmd;
mod kubeconfig;
mod node_cmd;
mod push_cmd;
mod server_cmd;
mod shutdown;
mod up_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Join a cluster as a node and run the pods bound to it.
    Node(NodeArgs),
    /// Run an all-in-one cluster (API server and one node) with the examples
    /// deployed, and write an admin kubeconfig.
    Up(UpArgs),
    /// Print the admin kubeconfig of a data dir.
    Kubeconfig(KubeconfigArgs),
    /// Upload a wasm module to the control plane's module store and print
    /// the reference pods can name as their image.
    Push(PushArgs),
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
    /// How long a node may go without renewing its Lease before it is
    /// marked Unknown and tainted unreachable (Kubernetes: 40s).
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    node_monitor_grace_period: Duration,
    /// tolerationSeconds of the not-ready and unreachable tolerations every
    /// pod gets: how long its pods stay on a failed node (Kubernetes: 300).
    #[arg(long, default_value_t = 5)]
    default_toleration_seconds: i64,
    /// The pods' network; each Node gets a block of it as its podCIDR.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: ipnet::Ipv4Net,
    /// The prefix length of each Node's podCIDR block (Kubernetes: 24). A
    /// /22 holds 1,021 pod IPs, a node's default --max-pods 1,000.
    #[arg(long, default_value_t = wasmpod_control::controllers::node_ipam::DEFAULT_NODE_CIDR_MASK_SIZE)]
    node_cidr_mask_size: u8,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Directory of the examples to deploy: its manifests/*.yaml, with
    /// modules built into its out/ (scripts/build-examples.sh). Default:
    /// ./wasm-examples when it has been built.
    #[arg(long)]
    examples: Option<PathBuf>,
    /// Deploy no examples.
    #[arg(long, conflicts_with = "examples")]
    no_examples: bool,
}

#[derive(Args)]
struct NodeArgs {
    /// URL of the API server, e.g. http://127.0.0.1:6443.
    #[arg(long, env = "WASMPOD_SERVER")]
    server: String,
    /// Bearer token for the API server.
    #[arg(long, env = "WASMPOD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Node name. Default: the host name.
    #[arg(long)]
    name: Option<String>,
    /// State directory (pods' volumes and logs, module and compiled-code caches).
    #[arg(long, env = "WASMPOD_NODE_DATA_DIR", default_value = ".wasmpod-node")]
    data_dir: PathBuf,
    /// The address reported as the node's InternalIP. Default: detected.
    #[arg(long)]
    node_ip: Option<std::net::IpAddr>,
    /// Address of the node's HTTP endpoint (container logs, which the API
    /// server proxies). Default: the node IP, port 10250; port 0 picks a
    /// free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Port of the node's tunnel, which carries other nodes' connections to
    /// its pods, on the node IP; 0 picks a free port. The Node advertises
    /// it in its `network.wasmpod.io/tunnel` annotation.
    #[arg(long, default_value_t = 0)]
    tunnel_port: u16,
    /// Keep every pod of this node inside the cluster: no connections to,
    /// and no name lookups of, addresses outside it. Without it a Namespace
    /// labelled `network.wasmpod.io/egress: deny` does this for its pods.
    #[arg(long)]
    deny_egress: bool,
    /// Most pods the node runs at once (reported as capacity).
    #[arg(long, default_value_t = 1000)]
    max_pods: u32,
    /// How often the node's Lease is renewed; keep it well under the
    /// server's --node-monitor-grace-period (8s).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    lease_renew_interval: Duration,
    /// The Lease's duration: the node is lost when it is not renewed for this long.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// How often node conditions are sampled.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    status_interval: Duration,
    /// First delay of a crash-looping container's restarts; it doubles each time.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    backoff_base: Duration,
    /// Longest delay between a crash-looping container's restarts.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    backoff_cap: Duration,
    /// How often ConfigMap and Secret volumes are refreshed.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    volume_resync: Duration,
    /// Instance allocation: auto (pool when the host can reserve the address
    /// space), on, or off (on demand).
    #[arg(long, default_value = "auto", value_parser = parse_pooling)]
    pooling: wasmpod_node::runtime::PoolingChoice,
    /// Instance slots of the pooling allocator.
    #[arg(long, default_value_t = 1000)]
    pool_slots: u32,
    /// Run hollow nodes: the node agent over a runtime that runs nothing,
    /// for scale tests. Their pods report Running until deleted; they serve
    /// no logs. `--name` is the prefix of their names (default: hollow).
    #[arg(long)]
    hollow: bool,
    /// How many hollow nodes (`<name>-0` .. `<name>-<count - 1>`) to run.
    #[arg(long, default_value_t = 1, requires = "hollow")]
    count: u32,
}

/// `250ms`, `10s`, `5m`; a bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 10s or 5m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: the unit is one of ms, s, m, h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

fn parse_pooling(text: &str) -> Result<wasmpod_node::runtime::PoolingChoice, String> {
    use wasmpod_node::runtime::PoolingChoice;
    match text {
        "auto" => Ok(PoolingChoice::Auto),
        "on" => Ok(PoolingChoice::On),
        "off" => Ok(PoolingChoice::Off),
        _ => Err(format!("{text:?}: one of auto, on, off")),
    }
}

#[derive(Args)]
struct PushArgs {
    /// The module or component (.wasm) to upload.
    file: PathBuf,
    /// NAME[:TAG] to point at the module (TAG defaults to latest).
    #[arg(long)]
    tag: Option<String>,
    /// URL of the API server. Default: the current context of $KUBECONFIG or ~/.kube/config.
    #[arg(long, env = "WASMPOD_SERVER")]
    server: Option<String>,
    /// Bearer token for the API server. Default: the kubeconfig user's token.
    #[arg(long, env = "WASMPOD_TOKEN", hide_env_values = true)]
    token: Option<String>,
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
        Command::Push(args) => runtime()?.block_on(push_cmd::run(push_cmd::Options {
            file: args.file,
            tag: args.tag,
            server: args.server,
            token: args.token,
        })),
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
            node_health: wasmpod_control::server::NodeHealth {
                monitor_grace_period: args.node_monitor_grace_period,
                default_toleration_seconds: args.default_toleration_seconds,
            },
            pod_network: wasmpod_control::controllers::node_ipam::NodeIpamSettings::new(
                args.cluster_cidr,
                args.node_cidr_mask_size,
            )?,
        })),
        Command::Node(args) => {
            let name = match (args.name, args.hollow) {
                (Some(name), _) => name,
                (None, true) => hollow_cmd::DEFAULT_PREFIX.to_string(),
                (None, false) => node_cmd::default_name(),
            };
            let mut opts = node_cmd::Options::new(args.server, name, args.data_dir);
            opts.token = args.token;
            opts.node_ip = args.node_ip;
            opts.listen = args.listen;
            opts.tunnel_port = args.tunnel_port;
            opts.deny_egress = args.deny_egress;
            opts.max_pods = args.max_pods;
            opts.lease_renew_interval = args.lease_renew_interval;
            opts.lease_duration = args.lease_duration;
            opts.status_interval = args.status_interval;
            opts.backoff_base = args.backoff_base;
            opts.backoff_cap = args.backoff_cap;
            opts.volume_resync = args.volume_resync;
            opts.pooling = args.pooling;
            opts.pool_slots = args.pool_slots;
            if args.hollow {
                return runtime()?.block_on(hollow_cmd::run(opts, args.count));
            }
            runtime()?.block_on(node_cmd::run(opts))
        }
        Command::Up(args) => {
            let examples = match (args.no_examples, args.examples) {
                (true, _) => None,
                (false, Some(dir)) => Some(dir),
                (false, None) => {
                    let dir = PathBuf::from("wasm-examples");
                    dir.join("out").is_dir().then_some(dir)
                }
            };
            runtime()?.block_on(up_cmd::run(up_cmd::Options {
                data_dir: args.data.data_dir,
                listen: args.listen,
                examples,
            }))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
