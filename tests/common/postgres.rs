//! A fresh Postgres schema per test, on the server named by
//! `WASMPOD_TEST_POSTGRES_URL`, so Postgres tests run in parallel without
//! seeing each other's objects. Without the variable these tests fail with
//! a clear message: CI always sets it, and a silent skip would hide a gap.

use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const URL_VAR: &str = "WASMPOD_TEST_POSTGRES_URL";

/// The Postgres server the tests use.
#[track_caller]
pub fn base_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{URL_VAR} is not set: the Postgres end-to-end tests need a Postgres server, e.g. \
             {URL_VAR}=postgres://postgres@127.0.0.1:5432/test (scripts/test.sh sets it and starts Postgres)"
        ),
    }
}

/// A schema that exists while this value lives.
pub struct PgSchema {
    base: String,
    pub name: String,
}

impl PgSchema {
    #[track_caller]
    pub fn create() -> PgSchema {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = base_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "e2e_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        psql(
            &base,
            &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name};"),
        )
        .unwrap_or_else(|e| panic!("creating Postgres schema {name} at {base}: {e}"));
        PgSchema { base, name }
    }

    /// The `--datastore` URL whose connections use only this schema.
    pub fn datastore_url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.name)
    }
}

/// A schema for a cluster kept in a `static`, which is never dropped: a
/// `sh` watchdog holds the read end of a pipe from this test process and
/// drops the schema once the pipe closes, that is once the process exited
/// (and the server, stopped by its own watchdog at the same moment, let go
/// of its connections).
pub struct SchemaUntilExit {
    pub name: String,
    datastore_url: String,
    _watchdog: Child,
    _pipe: ChildStdin,
}

/// Waits for EOF on stdin, gives the server a moment to exit, then drops
/// the schema `$2` on the Postgres server `$1`.
const DROP_AT_EXIT: &str = r#"read -r _line
sleep 3
exec psql "$1" -X -q -c "DROP SCHEMA IF EXISTS $2 CASCADE;"
"#;

impl PgSchema {
    /// Keeps the schema until this test process exits.
    #[track_caller]
    pub fn until_exit(self) -> SchemaUntilExit {
        // The watchdog drops the schema now, not this value.
        let schema = std::mem::ManuallyDrop::new(self);
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(DROP_AT_EXIT)
            .arg("wasmpod-e2e-schema")
            .arg(&schema.base)
            .arg(&schema.name)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the watchdog of schema {}: {e}", schema.name));
        let pipe = watchdog
            .stdin
            .take()
            .expect("the watchdog's stdin is piped");
        SchemaUntilExit {
            name: schema.name.clone(),
            datastore_url: schema.datastore_url(),
            _watchdog: watchdog,
            _pipe: pipe,
        }
    }
}

impl SchemaUntilExit {
    /// The `--datastore` URL whose connections use only this schema.
    pub fn datastore_url(&self) -> String {
        self.datastore_url.clone()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Err(e) = psql(
            &self.base,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE;", self.name),
        ) {
            eprintln!("dropping Postgres schema {}: {e}", self.name);
        }
    }
}

/// Runs SQL with the `psql` client.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .map_err(|e| format!("running psql (is the Postgres client installed?): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
