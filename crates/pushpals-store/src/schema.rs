//! Migrations, applied at every open.

use rusqlite_migration::{M, Migrations};

/// Each migration's SQL, in order. Append; never edit a released one.
const STEPS: [&str; 11] = [
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

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
