//! A fresh Postgres schema per test, on the server named by
//! `WASMPOD_TEST_POSTGRES_URL`, so Postgres tests run in parallel without
//! seeing each other's objects. Without the variable these tests fail with
//! a clear message: CI always sets it, and a silent skip would hide a gap.

use std::process::Command;
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
