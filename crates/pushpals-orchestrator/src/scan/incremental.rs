//! An incremental scan: only the files and commits since the last scan,
//! by the detectors that judge one file or one commit at a time.

use super::{Found, PER_FILE_KINDS, ScanReport, Scanner, Tree, ci_config, hotspots, secrets};
use crate::error::OrchestratorResult;
use crate::repositories::ServedRepo;
use pushpals_core::payload::ScanFinished;
use pushpals_core::{Actor, NewEvent};
use pushpals_store::findings::Finding;

impl Scanner {
    /// Scans only what changed since the last scan: the changed files
    /// (secrets, CI config, TODO hotspots) and the new commits (secrets in
    /// history). Falls back to a full scan when there is no earlier scan or
    /// history was rewritten.
    pub(crate) async fn scan_changes(
        &self,
        served: &ServedRepo,
        actor: Actor,
    ) -> OrchestratorResult<ScanReport> {
        let _one_at_a_time = self.turns.take().await;
        let head = served.repo.head_commit().await?;
        let last = self
            .store
            .last_repo_event_of_kind("scan_finished", served.name())
            .await?
            .and_then(|e| e.read::<ScanFinished>())
            .map(|finished| finished.commit);
        let Some(last) = last else {
            return self.full_scan(served, actor).await;
        };
        if last != head && !served.repo.is_ancestor(&last, &head).await? {
            return self.full_scan(served, actor).await;
        }
        let changed = if last == head {
            Vec::new()
        } else {
            served.repo.changed_files(&last, &head).await?
        };
        let tree = Tree::of_files(served.repo.read_at(&head, &changed).await?);
        let scanner = self.secrets.get();
        let (allowlist, _) = crate::secret_gate::secret_allowlist_at(&served.repo, &head).await;
        let mut per_file = secrets::in_tree(&tree, &scanner, &allowlist);
        per_file.extend(ci_config::detect(&tree));
        let churn = served.repo.churn(&head, 500).await?;
        per_file.extend(hotspots::detect(&tree, &churn));
        let in_tree: Vec<String> = per_file.iter().map(|f| f.key.clone()).collect();
        let history = if last == head {
            Vec::new()
        } else {
            let patches = served.repo.patches_between(&last, &head).await?;
            secrets::in_history(&patches, &in_tree, &scanner, &allowlist)
        };
        let per_file: Vec<Finding> = per_file.into_iter().map(Found::into_finding).collect();
        let history: Vec<Finding> = history.into_iter().map(Found::into_finding).collect();
        let kinds: Vec<String> = PER_FILE_KINDS.map(str::to_owned).to_vec();
        let (scanned, scope, repo) = (head.clone(), changed.clone(), served.name().to_owned());
        let changes = self
            .store
            .write(move |tx| {
                let mut changes = tx.record_findings(&repo, &kinds, Some(&scope), &per_file)?;
                let more = tx.record_findings(&repo, &[], None, &history)?;
                changes.new += more.new;
                changes.still_open += more.still_open;
                let finished = ScanFinished {
                    repo: Some(repo),
                    commit: scanned,
                    incremental: true,
                    changed_files: Some(scope.len() as u64),
                    new: changes.new as u64,
                    fixed: changes.fixed as u64,
                    ..ScanFinished::default()
                };
                tx.append(NewEvent::typed(None, actor, &finished)?)?;
                Ok(changes)
            })
            .await?;
        let open = self.open_findings(served.name()).await?;
        Ok(ScanReport {
            repo: served.name().to_owned(),
            commit: head,
            detectors: PER_FILE_KINDS
                .iter()
                .chain(["secret_history"].iter())
                .map(|k| (*k).to_owned())
                .collect(),
            changes,
            open,
            notes: vec![format!(
                "incremental: {} changed files since {}; tests, linters, advisories, docs and duplicates run in full scans",
                changed.len(),
                &last[..last.len().min(12)]
            )],
        })
    }
}
