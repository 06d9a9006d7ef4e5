//! The Postgres the benchmark measures against: which server (from the
//! environment), and a fresh schema on it that is dropped afterwards, so a
//! run never sees another run's objects.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const URL_VARS: [&str; 2] = ["WASMPOD_BENCH_POSTGRES_URL", "WASMPOD_TEST_POSTGRES_URL"];

/// Seconds psql waits for a connection before the Postgres row is given up.
const CONNECT_TIMEOUT_SECS: &str = "5";

/// Where the Postgres row runs, and whether the caller asked for it.
pub struct Target {
    pub url: String,
    /// The URL came from the environment: not reaching it is a failure
    /// rather than a row left out.
    pub explicit: bool,
    /// Where the URL came from, for the report.
    pub source: &'static str,
}

impl Target {
    pub fn from_env() -> Target {
        for var in URL_VARS {
            let url = std::env::var(var).unwrap_or_default();
            if !url.trim().is_empty() {
                return Target {
                    url: url.trim().to_owned(),
                    explicit: true,
                    source: var,
                };
            }
        }
        Target {
            url: DEFAULT_URL.to_owned(),
            explicit: false,
            source: "default",
        }
    }
}

/// A schema that exists while this value lives.
pub struct Schema {
    base: String,
    name: String,
}

impl Schema {
    /// Creates a fresh schema; the error says why Postgres could not be used.
    pub fn create(base: &str) -> anyhow::Result<Schema> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("bench_{}_{nanos}", std::process::id());
        psql(base, &format!("CREATE SCHEMA {name};"))
            .with_context(|| format!("creating schema {name} at {base}"))?;
        Ok(Schema {
            base: base.to_owned(),
            name,
        })
    }

    /// The `--datastore` URL whose connections see only this schema.
    pub fn datastore_url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Err(e) = psql(
            &self.base,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE;", self.name),
        ) {
            tracing::warn!(schema = %self.name, "dropping the benchmark schema failed: {e:#}");
        }
    }
}

/// Runs SQL with the `psql` client, which also tells whether the server is
/// reachable at all.
fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECS)
        .output()
        .context("running psql (is the Postgres client installed?)")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
