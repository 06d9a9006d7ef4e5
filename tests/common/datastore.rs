//! The two datastores a server runs on, so that an end-to-end scenario is
//! written once and run on both: a scenario is a function taking a
//! [`Datastore`], and `on_each_datastore!` makes it one test per datastore.
//! Each datastore has one shared cluster per test binary (and one shared
//! node joined to it); Postgres gets one schema per test binary, not per
//! test, which keeps the suite fast.

use std::ops::Deref;
use std::sync::OnceLock;

use super::node::{NodeProcess, shared_node};
use super::postgres::{PgSchema, SchemaUntilExit};
use super::{Cluster, ClusterOptions, unique};

/// Where a test's server keeps its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datastore {
    /// SQLite in the server's data dir.
    Sqlite,
    /// A schema of its own on `WASMPOD_TEST_POSTGRES_URL`; the tests fail
    /// when that is unset.
    Postgres,
}

impl Datastore {
    /// This test binary's shared cluster on the datastore.
    pub fn shared(self) -> &'static Cluster {
        match self {
            Datastore::Sqlite => Cluster::shared(),
            Datastore::Postgres => Cluster::shared_postgres(),
        }
    }

    /// A namespace of its own on the shared cluster.
    #[track_caller]
    pub fn namespace(self, prefix: &str) -> (&'static Cluster, String) {
        let cluster = self.shared();
        let ns = unique(prefix);
        cluster.create_namespace(&ns);
        (cluster, ns)
    }

    /// One node joined to the shared cluster, started on first use and
    /// stopped when the test process exits.
    pub fn node(self) -> &'static NodeProcess {
        match self {
            Datastore::Sqlite => shared_node(),
            Datastore::Postgres => {
                static NODE: OnceLock<NodeProcess> = OnceLock::new();
                NODE.get_or_init(|| Cluster::shared_postgres().start_node("shared-node"))
            }
        }
    }

    /// A cluster of its own, for a test that needs a whole cluster (every
    /// node, the `default` namespace). On Postgres it gets a fresh schema,
    /// dropped with the cluster.
    pub fn start(self, options: ClusterOptions) -> OwnCluster {
        match self {
            Datastore::Sqlite => OwnCluster {
                cluster: Cluster::start_with_options(options),
                _schema: None,
            },
            Datastore::Postgres => {
                let schema = PgSchema::create();
                let cluster = Cluster::start_with_options(ClusterOptions {
                    datastore: Some(schema.datastore_url()),
                    ..options
                });
                OwnCluster {
                    cluster,
                    _schema: Some(schema),
                }
            }
        }
    }
}

/// A cluster started for one test; on Postgres its schema is dropped after
/// the server stopped (fields drop in order).
pub struct OwnCluster {
    cluster: Cluster,
    _schema: Option<PgSchema>,
}

impl Deref for OwnCluster {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl Cluster {
    /// [`Cluster::shared`] on Postgres: one cluster per test binary, on a
    /// schema of its own that is dropped when the test process exits.
    pub fn shared_postgres() -> &'static Cluster {
        static SHARED: OnceLock<(Cluster, SchemaUntilExit)> = OnceLock::new();
        let (cluster, _) = SHARED.get_or_init(|| {
            let schema = PgSchema::create().until_exit();
            let cluster = Self::launch(
                ClusterOptions {
                    datastore: Some(schema.datastore_url()),
                    ..ClusterOptions::with_silent_nodes()
                },
                true,
            );
            (cluster, schema)
        });
        cluster
    }
}

/// Turns each scenario `fn name(ds: Datastore)` into a module `name` with
/// the tests `on_sqlite` and `on_postgres`, so `cargo test on_postgres`
/// runs the Postgres half.
#[macro_export]
macro_rules! on_each_datastore {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[test]
            fn on_sqlite() {
                super::$scenario($crate::common::datastore::Datastore::Sqlite);
            }

            #[test]
            fn on_postgres() {
                super::$scenario($crate::common::datastore::Datastore::Postgres);
            }
        }
    )+};
}
