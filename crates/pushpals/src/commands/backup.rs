//! `backup` and `restore`.

use anyhow::{Context, Result};
use pushpals_store::backup::{BackupReport, backup as online_backup, check_backup};
use pushpals_store::{DATABASE_FILE, DataDirLock};
use std::path::Path;

fn describe(report: &BackupReport) -> String {
    format!(
        "{} events, {} tasks, head {} {}",
        report.events,
        report.tasks,
        report.head_id.map_or("-".to_owned(), |id| id.to_string()),
        report.head_hash.as_deref().unwrap_or("-")
    )
}

/// `backup <file>`.
pub fn backup(data_dir: &Path, file: &Path) -> Result<()> {
    let report = online_backup(data_dir, file)?;
    say!("Backed up to {}: {}", file.display(), describe(&report));
    Ok(())
}

/// `restore <file>`: the server must be stopped.
pub async fn restore(data_dir: &Path, file: &Path) -> Result<()> {
    let _lock = DataDirLock::acquire(data_dir)
        .context("stop the server before restoring (its data directory is in use)")?;
    let scratch = data_dir.join(format!("restore-check-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let checked = check_backup(file, &scratch).await;
    let report = match checked {
        Ok(report) => report,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(error).context(format!(
                "{} cannot be restored; nothing was changed",
                file.display()
            ));
        }
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let live = data_dir.join(DATABASE_FILE);
    let kept = data_dir.join(format!("{DATABASE_FILE}.before-restore-{stamp}"));
    if live.exists() {
        std::fs::rename(&live, &kept)
            .with_context(|| format!("cannot move {} aside", live.display()))?;
        for suffix in ["-wal", "-shm"] {
            let side = data_dir.join(format!("{DATABASE_FILE}{suffix}"));
            if side.exists() {
                let _ = std::fs::rename(
                    &side,
                    data_dir.join(format!("{DATABASE_FILE}{suffix}.before-restore-{stamp}")),
                );
            }
        }
    }
    std::fs::rename(scratch.join(DATABASE_FILE), &live)
        .with_context(|| format!("cannot put the backup in place at {}", live.display()))?;
    let _ = std::fs::remove_dir_all(&scratch);
    say!("Restored {}: {}", file.display(), describe(&report));
    if kept.exists() {
        say!("The database it replaced is kept as {}.", kept.display());
    }
    Ok(())
}
