//! The scan schedule: each repository scanned at its `[scan]
//! interval_hours`, and incrementally whenever its HEAD moved since.

use super::Scanner;
use crate::checks::repo_config_at;
use crate::repositories::ServedRepo;
use pushpals_core::Actor;

/// How often the scheduler looks at the repository's HEAD.
const SCHEDULE_TICK: std::time::Duration = std::time::Duration::from_secs(300);

impl Scanner {
    /// Scans each repository on a schedule (`[scan] interval_hours` in its
    /// `pushpals.toml`) and whenever its HEAD has moved since its last
    /// scan, for as long as the orchestrator lives.
    pub(crate) fn spawn_schedule(self: &std::sync::Arc<Self>) {
        let scanner = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut scanned: std::collections::HashMap<String, (String, std::time::Instant)> =
                std::collections::HashMap::new();
            let mut tick = tokio::time::interval(SCHEDULE_TICK);
            loop {
                tick.tick().await;
                let Some(scanner) = scanner.upgrade() else {
                    return;
                };
                for served in scanner.repos.all() {
                    let last = scanned.get(served.name()).cloned();
                    if let Some(head) = scanner.scan_if_due(&served, last).await {
                        scanned.insert(served.name().to_owned(), (head, std::time::Instant::now()));
                    }
                }
            }
        });
    }

    /// One repository's turn of the schedule: scans it when due; the HEAD
    /// scanned, if it was.
    async fn scan_if_due(
        &self,
        served: &ServedRepo,
        last: Option<(String, std::time::Instant)>,
    ) -> Option<String> {
        let head = served.repo.head_commit().await.ok()?;
        let config = repo_config_at(&served.repo, &head)
            .await
            .unwrap_or_default();
        if config.scan.interval_hours == 0 {
            return None;
        }
        let interval = std::time::Duration::from_secs(config.scan.interval_hours * 3600);
        let due = match &last {
            None => true,
            Some((commit, at)) => *commit != head || at.elapsed() >= interval,
        };
        if !due {
            return None;
        }
        // New commits: look at what changed; the interval: everything.
        let incremental = last
            .as_ref()
            .is_some_and(|(commit, at)| *commit != head && at.elapsed() < interval);
        let scanned = if incremental {
            self.scan_changes(served, Actor::Orchestrator).await
        } else {
            self.scan(served, Actor::Orchestrator).await
        };
        match scanned {
            Ok(report) => tracing::info!(
                repo = served.name(),
                new = report.changes.new,
                fixed = report.changes.fixed,
                "scheduled scan done"
            ),
            Err(error) => {
                tracing::warn!(repo = served.name(), %error, "the scheduled scan failed")
            }
        }
        Some(head)
    }
}
