//! The store's tests run against both backends: each test is an `async fn`
//! taking a [`TestDb`], and `on_both_backends!` makes a `sqlite::` and a
//! `postgres::` test of it. PostgreSQL is a throwaway cluster from Debian's
//! packages (`pushpals_test_support::postgres_database`), a new database
//! per test.

use pushpals_store::{Database, Durability, Store};
use pushpals_test_support::{PgDatabase, postgres_database};

/// A fresh, empty database of one backend.
pub struct TestDb {
    /// The data directory (SQLite's file lives in it).
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database, when that is the backend.
    pub pg: Option<PgDatabase>,
}

impl TestDb {
    /// SQLite in a new data directory.
    pub fn sqlite() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            pg: None,
        }
    }

    /// A new database in the test PostgreSQL cluster.
    pub fn postgres() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            pg: Some(postgres_database()),
        }
    }

    /// Where the store is.
    pub fn database(&self) -> Database {
        match &self.pg {
            Some(pg) => Database::Postgres(pg.url.clone()),
            None => Database::Sqlite(self.dir.path().to_path_buf()),
        }
    }

    /// Opens the store (again).
    pub fn open(&self, durability: Durability) -> Store {
        Store::open_database(&self.database(), durability).unwrap()
    }

    /// Runs raw SQL on the database, beside the store (on a thread of its
    /// own: PostgreSQL's client may not block an async test's thread).
    #[allow(dead_code)]
    pub fn exec(&self, sql: &str) -> Result<(), String> {
        let sql = sql.to_owned();
        match &self.pg {
            Some(pg) => {
                let url = pg.url.clone();
                std::thread::spawn(move || {
                    let mut client = postgres::Client::connect(&url, postgres::NoTls)
                        .map_err(|e| e.to_string())?;
                    client.batch_execute(&sql).map_err(|e| {
                        e.as_db_error()
                            .map_or_else(|| e.to_string(), |db| db.message().to_owned())
                    })
                })
                .join()
                .unwrap()
            }
            None => rusqlite::Connection::open(self.dir.path().join("pushpals.db"))
                .unwrap()
                .execute_batch(&sql)
                .map_err(|e| e.to_string()),
        }
    }
}

/// A `sqlite::NAME` and a `postgres::NAME` test of each `async fn NAME(db:
/// &TestDb)` named. (Not every test file that shares this module uses it.)
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&crate::backends::TestDb::sqlite()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&crate::backends::TestDb::postgres()).await;
                }
            )+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_backends;
