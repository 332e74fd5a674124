//! `store migrate`: moving the store to another database.

use anyhow::{Context, Result};
use pushpals_store::migrate::migrate;
use pushpals_store::{DataDirLock, Database};
use std::path::{Path, PathBuf};

/// `store migrate --to TARGET [--from SOURCE]`: the server must be stopped
/// (its data directory is locked while the copy runs).
pub async fn migrate_store(
    data_dir: &Path,
    to: &str,
    from: Option<&str>,
    config: Option<&Path>,
    json: bool,
) -> Result<()> {
    let config_path = crate::paths::config_file(config)?;
    let settings = crate::serve::load_settings(&config_path, config.is_some())?;
    let _lock = DataDirLock::acquire(data_dir)
        .context("stop the server before moving its store (its data directory is in use)")?;
    let source = settings
        .store
        .database(from, data_dir)
        .map_err(anyhow::Error::msg)?;
    let target = if to.contains("://") || to.contains('=') {
        Database::postgres(to)?
    } else {
        Database::Sqlite(PathBuf::from(to))
    };
    let (shown_source, shown_target) = (source.to_string(), target.to_string());
    let report = tokio::task::spawn_blocking(move || migrate(&source, &target))
        .await
        .context("the copy stopped")?
        .with_context(|| format!("{shown_source} was not copied to {shown_target}"))?;
    if json {
        crate::commands::print_json(&serde_json::to_value(&report)?);
        return Ok(());
    }
    for (table, rows) in &report.rows {
        say!("{table:>20}  {rows}");
    }
    say!(
        "Copied {shown_source} to {shown_target}: {} events, chain head {} {} on both.",
        report.after.checked,
        report
            .after
            .head_id
            .map_or("-".to_owned(), |id| id.to_string()),
        report.after.head_hash.as_deref().unwrap_or("-")
    );
    say!(
        "Serve from it with `pushpals serve --database URL`, or set [store] url in config.toml; \
         the source is left as it was."
    );
    Ok(())
}
