//! One `wasmpod server` child process, started through a small shell wrapper
//! so that the server dies with the test process even when no destructor
//! runs (a shared cluster lives in a `static`, a test binary may abort).
//!
//! The wrapper keeps our end of a pipe on fd 3: when that pipe reaches EOF
//! (the test process exited or the harness let go of it) it stops the server
//! and, for shared clusters, removes the cluster's directory. Writing `keep`
//! first stops the server without removing anything (restarts).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const WRAPPER: &str = r#"exec 3<&0
"$@" </dev/null 1>&2 &
child=$!
echo "$child"
(
  read -r line <&3
  kill "$child" 2>/dev/null
  if [ "$line" != keep ] && [ -n "$WASMPOD_E2E_CLEANUP" ]; then
    sleep 2
    kill -9 "$child" 2>/dev/null
    rm -rf "$WASMPOD_E2E_CLEANUP"
  fi
) &
wait "$child"
"#;

/// A running (or exited) server process.
pub struct ServerProcess {
    wrapper: Child,
    stdin: Option<ChildStdin>,
    /// Process id of the server itself, not of the wrapper.
    pub pid: u32,
}

impl ServerProcess {
    /// Starts `program args...` with stdout and stderr appended to `log`.
    /// `cleanup`, when set, is removed once the test process exits.
    pub fn spawn(
        program: &Path,
        args: &[String],
        log: &Path,
        cleanup: Option<&Path>,
    ) -> ServerProcess {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("opening server log {}: {e}", log.display()));
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg("wasmpod-e2e")
            .arg(program)
            .args(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        match cleanup {
            Some(dir) => cmd.env("WASMPOD_E2E_CLEANUP", dir),
            None => cmd.env_remove("WASMPOD_E2E_CLEANUP"),
        };
        let mut wrapper = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let stdout = wrapper.stdout.take().expect("wrapper stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the server pid from the wrapper");
        let pid = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the wrapper printed no pid: {line:?}"));
        let stdin = wrapper.stdin.take();
        ServerProcess {
            wrapper,
            stdin,
            pid,
        }
    }

    /// True once the server has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.wrapper.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL, as a crash or an OOM kill would end it.
    pub fn kill9(&mut self) {
        signal(self.pid, "-KILL");
        self.wait(Duration::from_secs(10));
        self.release();
    }

    /// SIGTERM, then SIGKILL if the server has not exited after `grace`.
    /// True if it exited by itself within `grace`.
    pub fn stop(&mut self, grace: Duration) -> bool {
        signal(self.pid, "-TERM");
        let graceful = self.wait(grace);
        if !graceful {
            signal(self.pid, "-KILL");
            self.wait(Duration::from_secs(10));
        }
        self.release();
        graceful
    }

    /// Waits for the server to exit; false on timeout.
    fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.exited() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Lets the wrapper's watchdog end without removing the directory:
    /// the server is already stopped and the harness cleans up itself.
    fn release(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"keep\n");
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.exited() {
            self.stop(Duration::from_secs(2));
        }
        self.release();
        let _ = self.wrapper.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    // Errors mean the process is already gone, which is what was wanted.
    let _ = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}
