//! Migrations, applied at every open: SQLite's and PostgreSQL's, each
//! backend with its own list (PostgreSQL's first step is SQLite's version
//! 11 in one).

use crate::error::{StoreError, StoreResult};
use crate::sql::{Db, params};
use rusqlite_migration::{M, Migrations};

/// Each migration's SQL, in order. Append; never edit a released one.
const STEPS: [&str; 12] = [
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_grants.sql"),
    include_str!("../migrations/0003_agent_tasks.sql"),
    include_str!("../migrations/0004_pairing.sql"),
    include_str!("../migrations/0005_push.sql"),
    include_str!("../migrations/0006_findings.sql"),
    include_str!("../migrations/0007_durations.sql"),
    include_str!("../migrations/0008_test_results.sql"),
    include_str!("../migrations/0009_readiness.sql"),
    include_str!("../migrations/0010_chat.sql"),
    include_str!("../migrations/0011_repositories.sql"),
    include_str!("../migrations/0012_workers.sql"),
];

/// The schema version this build writes (SQLite's `user_version`).
pub const SCHEMA_VERSION: usize = STEPS.len();

/// The store's migrations, in order.
pub fn migrations() -> Migrations<'static> {
    migrations_through(SCHEMA_VERSION)
}

/// The first `version` migrations: the schema an older build wrote (for
/// upgrade tests and tools).
pub fn migrations_through(version: usize) -> Migrations<'static> {
    Migrations::new(STEPS.iter().take(version).map(|sql| M::up(sql)).collect())
}

/// PostgreSQL's migrations, in order. Append; never edit a released one.
const POSTGRES_STEPS: [&str; 2] = [
    include_str!("../migrations/postgres/0001_initial.sql"),
    include_str!("../migrations/postgres/0002_workers.sql"),
];

/// The PostgreSQL schema version this build writes (`pushpals_schema`).
pub const POSTGRES_SCHEMA_VERSION: usize = POSTGRES_STEPS.len();

/// Brings a PostgreSQL database (`url`, for messages) to this build's
/// schema, each step in a transaction of its own; a schema from a newer
/// build is refused and nothing is changed. Run under the leader lock, so
/// two servers never migrate at once.
pub(crate) fn migrate_postgres(db: &dyn Db, url: &str) -> StoreResult<()> {
    db.batch("CREATE TABLE IF NOT EXISTS pushpals_schema (version BIGINT NOT NULL)")?;
    let found: i64 = db
        .query_opt("SELECT MAX(version) FROM pushpals_schema", &params![])?
        .map(|row| row.get::<Option<i64>>(0))
        .transpose()?
        .flatten()
        .unwrap_or(0);
    if usize::try_from(found).is_ok_and(|v| v > POSTGRES_SCHEMA_VERSION) {
        return Err(StoreError::TooNew {
            path: crate::redacted_url(url).into(),
            found,
            supported: POSTGRES_SCHEMA_VERSION,
        });
    }
    let done = usize::try_from(found).unwrap_or(0);
    for (index, step) in POSTGRES_STEPS.iter().enumerate().skip(done) {
        db.batch("BEGIN")?;
        let applied = db.batch(step).and_then(|()| {
            db.execute("DELETE FROM pushpals_schema", &params![])?;
            db.execute(
                "INSERT INTO pushpals_schema (version) VALUES (?1)",
                &params![index + 1],
            )
        });
        match applied {
            Ok(_) => db.batch("COMMIT")?,
            Err(error) => {
                let _ = db.batch("ROLLBACK");
                return Err(error);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
