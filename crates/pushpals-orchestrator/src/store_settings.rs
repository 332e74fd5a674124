//! `[store]` in config.toml: where the server keeps its state.

use pushpals_store::Database;
use serde::Deserialize;
use std::path::Path;

/// `[store]`: SQLite in the data directory (the default), or a PostgreSQL
/// database.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// A PostgreSQL database, `postgres://user@host/db` (a password in it
    /// stays in this file; keep the file private). `serve --database`
    /// overrides it.
    pub url: Option<String>,
}

impl StoreSettings {
    /// Where the store is: `url` (from the command line) or `[store] url`,
    /// else SQLite in `data_dir`. A URL that is not PostgreSQL's is an
    /// error saying what to give.
    pub fn database(&self, url: Option<&str>, data_dir: &Path) -> Result<Database, String> {
        match url.or(self.url.as_deref()) {
            Some(url) => Database::postgres(url).map_err(|e| e.to_string()),
            None => Ok(Database::Sqlite(data_dir.to_path_buf())),
        }
    }

    /// Checks `[store] url` when it is given.
    pub(crate) fn check(&self) -> Result<(), String> {
        match &self.url {
            Some(url) => Database::postgres(url)
                .map(|_| ())
                .map_err(|e| format!("[store] url: {e}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_sqlite_unless_a_postgres_url_is_given() {
        let none = StoreSettings::default();
        let dir = Path::new("/data");
        assert_eq!(
            none.database(None, dir),
            Ok(Database::Sqlite(dir.to_path_buf()))
        );
        let set = StoreSettings {
            url: Some("postgres://pushpals@db/pushpals".into()),
        };
        assert!(matches!(
            set.database(None, dir),
            Ok(Database::Postgres(url)) if url == "postgres://pushpals@db/pushpals"
        ));
        assert!(matches!(
            set.database(Some("host=/run/postgresql dbname=pp"), dir),
            Ok(Database::Postgres(url)) if url.starts_with("host=")
        ));
        let wrong = set.database(Some("mysql://root:pw@db/x"), dir).unwrap_err();
        assert!(wrong.contains("not a PostgreSQL URL"), "{wrong}");
        assert!(!wrong.contains(":pw@"), "{wrong}");
        assert!(
            StoreSettings {
                url: Some("sqlite.db".into())
            }
            .check()
            .unwrap_err()
            .starts_with("[store] url")
        );
    }
}
