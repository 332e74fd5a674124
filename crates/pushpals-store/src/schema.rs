//! Migrations, applied at every open.

use rusqlite_migration::{M, Migrations};

/// The store's migrations, in order. Append; never edit a released one.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_initial.sql")),
        M::up(include_str!("../migrations/0002_grants.sql")),
        M::up(include_str!("../migrations/0003_agent_tasks.sql")),
        M::up(include_str!("../migrations/0004_pairing.sql")),
        M::up(include_str!("../migrations/0005_push.sql")),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
