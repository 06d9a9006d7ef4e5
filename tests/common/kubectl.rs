//! Runs the installed `kubectl` against a cluster, with the cluster's
//! kubeconfig and a discovery cache of its own, bounded in time so a hung
//! command fails its test instead of the whole run.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Cluster;

/// No single kubectl command of these tests takes longer.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

impl Cluster {
    /// `kubectl --kubeconfig <dir>/kubeconfig.yaml <args>`, not yet run.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.kube_cache_dir())
            .args(args);
        cmd.env_remove("KUBECONFIG")
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        cmd
    }

    /// Runs kubectl and returns its output, whatever the exit code.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        run(self.kubectl_command(args), None, args)
    }

    /// Runs kubectl with `stdin` as its standard input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run(self.kubectl_command(args), Some(stdin), args)
    }

    /// Runs kubectl, asserts that it succeeded, and returns its stdout.
    #[track_caller]
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        self.assert_ok(args, &out)
    }

    /// Like `kubectl_ok`, with `stdin` as standard input.
    #[track_caller]
    pub fn kubectl_ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, stdin);
        self.assert_ok(args, &out)
    }

    /// `kubectl apply -f -` of `manifest`; returns stdout.
    #[track_caller]
    pub fn apply(&self, manifest: &str) -> String {
        self.kubectl_ok_stdin(&["apply", "-f", "-"], manifest)
    }

    /// Runs a prepared kubectl command, asserts success, returns stdout.
    #[track_caller]
    pub fn kubectl_run_ok(&self, cmd: Command, what: &[&str]) -> String {
        let out = run(cmd, None, what);
        self.assert_ok(what, &out)
    }

    /// Runs kubectl, asserts that it failed, and returns its stderr.
    #[track_caller]
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert_failed(args, &out)
    }

    /// Like `kubectl_err`, with `stdin` as standard input.
    #[track_caller]
    pub fn kubectl_err_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, stdin);
        assert_failed(args, &out)
    }

    /// Starts kubectl in the background (e.g. `get -w`); its stdout lines
    /// are collected as they come. The process is killed on drop.
    pub fn kubectl_background(&self, args: &[&str]) -> Background {
        let mut cmd = self.kubectl_command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting kubectl");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("kubectl stdout is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = child.stderr.take().map(drain);
        Background {
            child,
            lines: rx,
            seen: Vec::new(),
            stderr,
            args: args.join(" "),
        }
    }

    /// `kubectl get <what> -n <ns> -o jsonpath=<path>`.
    #[track_caller]
    pub fn jsonpath(&self, ns: &str, what: &str, path: &str) -> String {
        self.kubectl_ok(&["get", what, "-n", ns, "-o", &format!("jsonpath={path}")])
    }

    /// `kubectl get <what> -n <ns> -o json`, parsed.
    #[track_caller]
    pub fn get_json(&self, ns: &str, what: &str) -> Value {
        let out = self.kubectl_ok(&["get", what, "-n", ns, "-o", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("get {what} -o json ({e}): {out}"))
    }

    /// True if `kubectl get` finds the object, false if it is NotFound.
    #[track_caller]
    pub fn exists(&self, ns: &str, what: &str) -> bool {
        let out = self.kubectl(&["get", what, "-n", ns, "-o", "name"]);
        if out.status.success() {
            return true;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("NotFound"),
            "get {what}: unexpected error: {stderr}"
        );
        false
    }

    #[track_caller]
    fn assert_ok(&self, args: &[&str], out: &Output) -> String {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kubectl {} failed ({}):\nstderr: {stderr}\nstdout: {stdout}\nserver log tail:\n{}",
            args.join(" "),
            out.status,
            self.server_log_tail(15)
        );
        stdout
    }
}

#[track_caller]
fn assert_failed(args: &[&str], out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kubectl {} succeeded but should have failed:\nstdout: {}\nstderr: {stderr}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Runs `cmd` to completion within `KUBECTL_TIMEOUT`.
fn run(mut cmd: Command, stdin: Option<&str>, what: &[&str]) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting kubectl (is it installed?)");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_string();
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let deadline = Instant::now() + KUBECTL_TIMEOUT;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default();
            panic!(
                "kubectl {} did not finish within {KUBECTL_TIMEOUT:?}; stderr: {}",
                what.join(" "),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default(),
        stderr: stderr
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// A kubectl process running in the background.
pub struct Background {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    args: String,
}

impl Background {
    /// Waits for a stdout line that contains `needle`; panics with
    /// everything seen after `timeout`.
    #[track_caller]
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        panic!(
            "kubectl {} printed no line containing {needle:?} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.seen.join("\n"),
            String::from_utf8_lossy(&stderr)
        );
    }

    /// Every stdout line so far.
    pub fn lines(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
