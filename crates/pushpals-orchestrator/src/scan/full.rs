//! A full scan: the committed tree exported to a scratch directory, every
//! detector over it (tests and linters in the sandbox), the findings
//! recorded against the earlier ones.

use super::{ALL_KINDS, Found, ScanReport, Scanner, Tree, installed, lint, walk};
use super::{MAX_FILES, advisories, ci_config, docs, duplicates, hotspots, secrets};
use crate::checks::repo_config_at;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::repositories::ServedRepo;
use pushpals_core::payload::ScanFinished;
use pushpals_core::{Actor, NewEvent};
use pushpals_store::findings::Finding;
use std::path::Path;

impl Scanner {
    /// Scans a repository's HEAD commit with the static detectors and
    /// records the findings.
    pub(crate) async fn scan(
        &self,
        served: &ServedRepo,
        actor: Actor,
    ) -> OrchestratorResult<ScanReport> {
        let _one_at_a_time = self.turns.take().await;
        self.full_scan(served, actor).await
    }

    /// A full scan; the caller holds its scan turn.
    pub(super) async fn full_scan(
        &self,
        served: &ServedRepo,
        actor: Actor,
    ) -> OrchestratorResult<ScanReport> {
        static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let commit = served.repo.head_commit().await?;
        let serial = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scratch = self
            .scratch_root
            .join(format!("scan-{}-{serial}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| {
            OrchestratorError::Internal(format!("cannot make {}: {e}", scratch.display()))
        })?;
        let exported = served.repo.export_tree(&commit, &scratch).await;
        let result = match exported {
            Ok(()) => self.scan_tree(served, &commit, &scratch, &actor).await,
            Err(error) => Err(error.into()),
        };
        self.runner.release(&scratch).await;
        let _ = std::fs::remove_dir_all(&scratch);
        let (mut found, mut notes, skipped) = result?;
        let wanted = repo_config_at(&served.repo, &commit)
            .await
            .ok()
            .and_then(|config| config.scan.detectors);
        let mut detectors: Vec<String> = ALL_KINDS
            .iter()
            .filter(|kind| !skipped.contains(kind))
            .map(|kind| (*kind).to_owned())
            .collect();
        if let Some(wanted) = &wanted {
            detectors.retain(|kind| wanted.contains(kind));
            found.retain(|f| wanted.iter().any(|w| w == f.kind));
            notes.push(format!("only these detectors: {}", wanted.join(", ")));
        }
        let findings: Vec<Finding> = found.into_iter().map(Found::into_finding).collect();
        let kinds = detectors.clone();
        let count = findings.len();
        let (scanned, at, repo) = (commit.clone(), actor, served.name().to_owned());
        notes.sort();
        let noted = notes.clone();
        let changes = self
            .store
            .write(move |tx| {
                let changes = tx.record_findings(&repo, &kinds, None, &findings)?;
                let finished = ScanFinished {
                    repo: Some(repo),
                    commit: scanned,
                    found: Some(count as u64),
                    new: changes.new as u64,
                    fixed: changes.fixed as u64,
                    notes: noted,
                    ..ScanFinished::default()
                };
                tx.append(NewEvent::typed(None, at, &finished)?)?;
                Ok(changes)
            })
            .await?;
        let open = self.open_findings(served.name()).await?;
        Ok(ScanReport {
            repo: served.name().to_owned(),
            commit,
            detectors,
            changes,
            open,
            notes,
        })
    }

    async fn scan_tree(
        &self,
        served: &ServedRepo,
        commit: &str,
        root: &Path,
        actor: &Actor,
    ) -> OrchestratorResult<(Vec<Found>, Vec<String>, Vec<&'static str>)> {
        let mut files = Vec::new();
        let mut left_out = 0;
        walk(root, root, &mut files, &mut left_out);
        files.sort();
        let tree = Tree::new(root, files, left_out);
        let mut notes = Vec::new();
        if tree.left_out > 0 {
            notes.push(format!(
                "{} files past the first {MAX_FILES} were not scanned",
                tree.left_out
            ));
        }
        let scanner = self.secrets.get();
        let (allowlist, broken) =
            crate::secret_gate::secret_allowlist_at(&served.repo, commit).await;
        notes.extend(broken);
        notes.extend(secrets::partly_read(&tree));
        let mut found = secrets::in_tree(&tree, &scanner, &allowlist);
        let patches = served.repo.recent_patches(commit, 500).await?;
        let in_tree: Vec<String> = found.iter().map(|f| f.key.clone()).collect();
        found.extend(secrets::in_history(
            &patches, &in_tree, &scanner, &allowlist,
        ));
        found.extend(ci_config::detect(&tree));
        let churn = served.repo.churn(commit, 500).await?;
        found.extend(hotspots::detect(&tree, &churn));
        found.extend(docs::detect(&tree));
        found.extend(duplicates::detect(&tree));
        let config = repo_config_at(&served.repo, commit)
            .await
            .unwrap_or_default();
        // Kinds whose detector did not run keep their open findings.
        let mut skipped: Vec<&'static str> = Vec::new();
        let (test_findings, test_notes) = self
            .test_findings(served.name(), &config, root, commit, actor)
            .await;
        if !test_notes.iter().all(|n| n.starts_with("slowest tests")) {
            skipped.extend([
                "failing_test",
                "flaky_test",
                "broken_check",
                "slow_test",
                "slow_check",
            ]);
        }
        found.extend(test_findings);
        notes.extend(test_notes);
        if let Some(source) = &self.settings.get().scan.osv {
            match advisories::load(source).await {
                Ok(records) => {
                    found.extend(advisories::detect(&advisories::pinned(&tree), &records))
                }
                Err(why) => {
                    skipped.push("vulnerable_dependency");
                    notes.push(format!("advisories were not checked: {why}"));
                }
            }
        } else {
            skipped.push("vulnerable_dependency");
            notes.push(
                "advisories were not checked: set [scan] osv in config.toml to an OSV database"
                    .into(),
            );
        }
        let (lint_findings, lint_notes) = self.lint_findings(&config, &tree, actor).await;
        if !lint_notes.is_empty() {
            skipped.push("lint");
        }
        found.extend(lint_findings);
        notes.extend(lint_notes);
        Ok((found, notes, skipped))
    }

    /// Runs the linters the tree calls for and reads their findings.
    async fn lint_findings(
        &self,
        config: &crate::checks::RepoConfig,
        tree: &Tree,
        actor: &Actor,
    ) -> (Vec<Found>, Vec<String>) {
        let mut found = Vec::new();
        let mut notes = Vec::new();
        let mentions = |file: &str, word: &str| tree.text(file).is_some_and(|t| t.contains(word));
        let linters = lint::linters_for(&tree.files, &mentions);
        if linters.is_empty() {
            return (found, notes);
        }
        let policy = match self.scan_policy(config) {
            Ok(policy) => policy,
            Err(error) => {
                notes.push(format!("linters were not run: {error}"));
                return (found, notes);
            }
        };
        for linter in linters {
            if !installed(linter.program()) {
                notes.push(format!(
                    "{} was skipped: it is not installed ({})",
                    linter.name(),
                    linter.install_hint()
                ));
                continue;
            }
            let verdict = policy.judge(linter.command());
            if verdict.decision != pushpals_policy::Decision::Allow || verdict.network {
                notes.push(format!(
                    "{} was skipped: policy says {} for `{}`",
                    linter.name(),
                    verdict.decision,
                    linter.command()
                ));
                continue;
            }
            let step = format!("scan:lint:{}", linter.name());
            match self
                .scan_command(&step, linter.command(), &tree.root, actor)
                .await
            {
                Ok(run) => match lint::parse(linter, &run.output) {
                    Some(findings) => found.extend(findings),
                    None => notes.push(format!(
                        "{} output could not be read; its end: {}",
                        linter.name(),
                        run.output
                            .chars()
                            .rev()
                            .take(300)
                            .collect::<String>()
                            .chars()
                            .rev()
                            .collect::<String>()
                    )),
                },
                Err(why) => notes.push(format!("{} could not run: {why}", linter.name())),
            }
        }
        (found, notes)
    }
}
