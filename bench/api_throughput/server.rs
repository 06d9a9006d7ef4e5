//! The `wasmpod server` child process under measurement: started on a free
//! loopback port with its own temp data dir, read through `/proc` for its
//! resident memory and CPU time, stopped with SIGTERM when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a release build may take to open its store and answer
/// `/readyz` (Postgres runs its migrations first).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long SIGTERM may take before the process is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running server. Dropping it stops the process.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    log: PathBuf,
    /// Kept so the data dir lives as long as the process that uses it.
    _data_dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server on SQLite in a fresh data dir, or on `datastore`.
    pub fn start(datastore: Option<&str>) -> anyhow::Result<Server> {
        Self::start_with(datastore, &[])
    }

    /// [`Server::start`] with more flags for `wasmpod server`.
    pub fn start_with(datastore: Option<&str>, flags: &[&str]) -> anyhow::Result<Server> {
        let data_dir = tempfile::Builder::new()
            .prefix("wasmpod-bench-")
            .tempdir()
            .context("creating the server's data dir")?;
        let addr = free_loopback_addr()?;
        let log = data_dir.path().join("server.log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let log_err = log_file.try_clone().context("duplicating the log handle")?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmpod"));
        cmd.arg("server")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--listen")
            .arg(addr.to_string());
        if let Some(url) = datastore {
            cmd.arg("--datastore").arg(url);
        }
        cmd.args(flags);
        // The server's own default log filter, whatever the caller's
        // environment asks for: debug logging would be part of the figure.
        cmd.env_remove("RUST_LOG")
            .env_remove("WASMPOD_DATASTORE")
            .env_remove("WASMPOD_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err));
        let child = cmd.spawn().context("starting wasmpod server")?;
        let pid = child.id();
        Ok(Server {
            child,
            pid,
            base_url: format!("http://{addr}"),
            log,
            _data_dir: data_dir,
        })
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/readyz", self.base_url);
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "the server exited ({status}) before it was ready; its log:\n{}",
                    self.log_tail(30)
                );
            }
            match client.get(&url).send().await {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => last = format!("HTTP {}", resp.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the server did not answer /readyz within {READY_TIMEOUT:?} (last: {last}); its log:\n{}",
            self.log_tail(30)
        )
    }

    /// The process's counters right now.
    pub fn sample(&self) -> anyhow::Result<ProcSample> {
        ProcSample::read(&format!("/proc/{}", self.pid))
    }

    /// The last `lines` lines of the server's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, then SIGKILL if the server has not exited after the grace
    /// period.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // An error means the process is already gone, which is the goal.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback address no one listens on right now. The port is released
/// before the server binds it; on a quiet machine nobody takes it between.
fn free_loopback_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?)
}

/// Resident memory and CPU time of one process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// `VmRSS`, in KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak resident set), in KiB.
    pub peak_rss_kib: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
}

impl ProcSample {
    /// Reads `<proc_dir>/status` and `<proc_dir>/stat` (`/proc/<pid>` or
    /// `/proc/self`).
    pub fn read(proc_dir: &str) -> anyhow::Result<ProcSample> {
        let status_path = Path::new(proc_dir).join("status");
        let status = std::fs::read_to_string(&status_path)
            .with_context(|| format!("reading {}", status_path.display()))?;
        let stat_path = Path::new(proc_dir).join("stat");
        let stat = std::fs::read_to_string(&stat_path)
            .with_context(|| format!("reading {}", stat_path.display()))?;
        Ok(ProcSample {
            rss_kib: status_kib(&status, "VmRSS:")?,
            peak_rss_kib: status_kib(&status, "VmHWM:")?,
            cpu: stat_cpu(&stat, clock_ticks_per_second())?,
        })
    }
}

/// CPU time all processes on the machine spent busy (user, nice, system,
/// irq, softirq, steal), summed over CPUs, from `/proc/stat`. Set beside
/// the server's and the load generator's own time it shows what else ran:
/// Postgres, or anything else on the machine.
pub fn machine_busy() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().context("a counter in /proc/stat is not a number"))
        .collect::<anyhow::Result<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Ok(Duration::from_micros(
        busy * 1_000_000 / clock_ticks_per_second().max(1),
    ))
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_kib(status: &str, field: &str) -> anyhow::Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc status"))?;
    let value = line[field.len()..].trim().trim_end_matches("kB").trim();
    value
        .parse()
        .with_context(|| format!("{field} is not a number: {line:?}"))
}

/// utime + stime of `/proc/<pid>/stat`. The fields are counted after the
/// command name, which is in parentheses and may itself contain spaces.
fn stat_cpu(stat: &str, ticks_per_second: u64) -> anyhow::Result<Duration> {
    let after_comm = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .context("no command name in /proc stat")?;
    // After the name come state (field 3) ... utime (14) and stime (15).
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .context("/proc stat is too short")?
            .parse::<u64>()
            .context("a CPU time in /proc stat is not a number")
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_micros(
        ticks * 1_000_000 / ticks_per_second.max(1),
    ))
}

/// `sysconf(_SC_CLK_TCK)`, through `getconf`; Linux uses 100 on every
/// common architecture, which is the fallback.
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}
