//! The proactive scanner: reads the committed tree and the history, finds
//! what a careful teammate would fix, and keeps each finding under a stable
//! fingerprint. These detectors run no repository code: secrets in the tree
//! and in history, risky CI and container config, TODO hotspots, and docs
//! and developer-experience gaps.
//!
//! Over 400 lines: the scan's course (scratch tree, detectors, the findings' life); each detector
//! is its own module.

mod advisories;
mod ci_config;
mod docs;
mod duplicates;
mod hotspots;
mod lint;
mod proposals;
mod secrets;
pub(crate) mod test_output;
mod test_runs;

use crate::checks::repo_config_at;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use crate::repositories::ServedRepo;
use pushpals_core::{Actor, EventKind, NewEvent};
use pushpals_store::findings::{Finding, FindingFilter, ScanChanges};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Most files read in one scan.
const MAX_FILES: usize = 20_000;
/// Largest file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Scans take turns: a scheduled scan and one the person asked for run
/// one after the other, never over each other's scratch tree and findings.
#[derive(Default)]
pub(crate) struct ScanTurns(tokio::sync::Mutex<()>);

impl ScanTurns {
    /// Waits for this scan's turn; it lasts while the guard lives.
    pub(crate) async fn take(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }
}

/// What a detector found, before it gets its fingerprint.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub kind: &'static str,
    pub severity: &'static str,
    pub title: String,
    pub file: Option<String>,
    pub line: Option<u64>,
    /// What makes it the same finding next time (with kind and file).
    pub key: String,
    pub evidence: Value,
}

impl Found {
    fn into_finding(self) -> Finding {
        let digest = Sha256::digest(
            format!(
                "{}\0{}\0{}",
                self.kind,
                self.file.as_deref().unwrap_or_default(),
                self.key
            )
            .as_bytes(),
        );
        Finding {
            fingerprint: hex::encode(&digest[..12]),
            kind: self.kind.to_owned(),
            severity: self.severity.to_owned(),
            title: self.title,
            file: self.file,
            line: self.line,
            evidence: self.evidence,
            state: "open".into(),
            first_seen: String::new(),
            last_seen: String::new(),
            reason: None,
            repo: String::new(),
        }
    }
}

/// A committed tree, exported for reading; its small text files are read
/// once, here.
pub(crate) struct Tree {
    pub root: PathBuf,
    /// Files, relative, sorted.
    pub files: Vec<String>,
    /// Files left out (too many).
    pub left_out: usize,
    texts: std::collections::HashMap<String, String>,
}

impl Tree {
    fn new(root: &Path, files: Vec<String>, left_out: usize) -> Self {
        let texts = files
            .iter()
            .filter_map(|file| read_text(&root.join(file)).map(|text| (file.clone(), text)))
            .collect();
        Self {
            root: root.to_path_buf(),
            files,
            left_out,
            texts,
        }
    }

    /// A tree of only some files, read from git (an incremental scan).
    fn of_files(contents: Vec<(String, Option<Vec<u8>>)>) -> Self {
        let mut files = Vec::new();
        let mut texts = std::collections::HashMap::new();
        for (path, content) in contents {
            let Some(bytes) = content else { continue };
            files.push(path.clone());
            if bytes.len() as u64 <= MAX_FILE_BYTES
                && !bytes.iter().take(8192).any(|&b| b == 0)
                && let Ok(text) = String::from_utf8(bytes)
            {
                texts.insert(path, text);
            }
        }
        files.sort();
        Self {
            root: PathBuf::new(),
            files,
            left_out: 0,
            texts,
        }
    }

    /// A file's text, when it is small text.
    pub fn text(&self, relative: &str) -> Option<&str> {
        self.texts.get(relative).map(String::as_str)
    }
}

fn read_text(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<String>, left_out: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(root, &path, files, left_out);
        } else if kind.is_file() {
            if files.len() >= MAX_FILES {
                *left_out += 1;
            } else if let Ok(rel) = path.strip_prefix(root) {
                files.push(rel.to_string_lossy().into_owned());
            }
        }
    }
}

/// The result of a scan.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// The repository scanned.
    pub repo: String,
    /// The commit scanned.
    pub commit: String,
    /// The detectors that ran.
    pub detectors: Vec<String>,
    /// What changed against earlier scans.
    pub changes: ScanChanges,
    /// The open findings after this scan, most severe first.
    pub open: Vec<Finding>,
    /// What was not scanned, and why.
    pub notes: Vec<String>,
}

impl Orchestrator {
    /// Scans a repository's HEAD commit (the only one's when `repo` is
    /// `None`) with the static detectors and records the findings.
    pub async fn scan(&self, repo: Option<&str>, actor: Actor) -> OrchestratorResult<ScanReport> {
        let served = self.resolve_repo(repo)?;
        let _one_at_a_time = self.scan_turns.take().await;
        self.full_scan(&served, actor).await
    }

    /// A full scan; the caller holds its scan turn.
    async fn full_scan(&self, served: &ServedRepo, actor: Actor) -> OrchestratorResult<ScanReport> {
        static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let commit = served.repo.head_commit().await?;
        let serial = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scratch = self
            .worktrees_dir
            .parent()
            .unwrap_or(Path::new("."))
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
                tx.append(NewEvent {
                    task_id: None,
                    actor: at,
                    kind: EventKind::ScanFinished,
                    payload: json!({
                        "repo": repo,
                        "commit": scanned,
                        "found": count,
                        "new": changes.new,
                        "fixed": changes.fixed,
                        "notes": noted,
                    }),
                })?;
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
        let scanner = self.scanner();
        let (allowlist, broken) = self.secret_allowlist_at(&served.repo, commit).await;
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
        if let Some(source) = &self.settings().scan.osv {
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

    /// The open findings of one repository.
    pub(crate) async fn open_findings(&self, repo: &str) -> OrchestratorResult<Vec<Finding>> {
        Ok(self
            .store
            .findings(FindingFilter {
                repo: Some(repo.to_owned()),
                state: Some("open".into()),
                kind: None,
            })
            .await?)
    }

    /// The repository holding finding `fingerprint`: `repo` when given,
    /// else the one repository that has it.
    pub(crate) async fn repo_of_finding(
        &self,
        repo: Option<&str>,
        fingerprint: &str,
    ) -> OrchestratorResult<String> {
        if let Some(repo) = repo {
            return Ok(self.served(repo)?.name().to_owned());
        }
        let holders: Vec<String> = self
            .store
            .findings(FindingFilter::default())
            .await?
            .into_iter()
            .filter(|f| f.fingerprint == fingerprint)
            .map(|f| f.repo)
            .collect();
        match holders.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(OrchestratorError::NotFound(format!(
                "no finding {fingerprint}; `pushpals findings` lists them"
            ))),
            several => Err(OrchestratorError::InvalidInput(format!(
                "finding {fingerprint} is in several repositories ({}): say which (--repo)",
                several.join(", ")
            ))),
        }
    }

    /// Dismisses a finding (it stays dismissed on later scans).
    pub async fn dismiss_finding(
        &self,
        repo: Option<&str>,
        fingerprint: &str,
        reason: &str,
        actor: Actor,
    ) -> OrchestratorResult<()> {
        if reason.trim().is_empty() {
            return Err(OrchestratorError::InvalidInput(
                "say why the finding is dismissed (--reason)".into(),
            ));
        }
        let repo = self.repo_of_finding(repo, fingerprint).await?;
        let (fp, why) = (fingerprint.to_owned(), reason.to_owned());
        let dismissed = self
            .store
            .write(move |tx| {
                let dismissed = tx.dismiss_finding(&repo, &fp, &why)?;
                if dismissed {
                    tx.append(NewEvent {
                        task_id: None,
                        actor,
                        kind: EventKind::FindingDismissed,
                        payload: json!({ "fingerprint": fp, "reason": why, "repo": repo }),
                    })?;
                }
                Ok(dismissed)
            })
            .await?;
        if dismissed {
            Ok(())
        } else {
            Err(OrchestratorError::NotFound(format!(
                "no finding {fingerprint}; `pushpals findings` lists them"
            )))
        }
    }
}

/// How often the scheduler looks at the repository's HEAD.
const SCHEDULE_TICK: std::time::Duration = std::time::Duration::from_secs(300);

impl Orchestrator {
    /// Scans each repository on a schedule (`[scan] interval_hours` in its
    /// `pushpals.toml`) and whenever its HEAD has moved since its last
    /// scan, for as long as the orchestrator lives.
    pub fn spawn_scanner(self: &std::sync::Arc<Self>) {
        let orchestrator = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut scanned: std::collections::HashMap<String, (String, std::time::Instant)> =
                std::collections::HashMap::new();
            let mut tick = tokio::time::interval(SCHEDULE_TICK);
            loop {
                tick.tick().await;
                let Some(orchestrator) = orchestrator.upgrade() else {
                    return;
                };
                for served in orchestrator.repos.all() {
                    let last = scanned.get(served.name()).cloned();
                    if let Some(head) = orchestrator.scan_if_due(&served, last).await {
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
            self.scan_changes(Some(served.name()), Actor::Orchestrator)
                .await
        } else {
            self.scan(Some(served.name()), Actor::Orchestrator).await
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

/// Whether `program` is on this machine's PATH.
fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

impl Orchestrator {
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

/// Every kind of finding a full scan looks for (what it does not find
/// again is marked fixed).
const ALL_KINDS: [&str; 13] = [
    "secret",
    "secret_history",
    "ci_config",
    "todo_hotspot",
    "docs",
    "failing_test",
    "flaky_test",
    "broken_check",
    "lint",
    "vulnerable_dependency",
    "duplicate_code",
    "slow_test",
    "slow_check",
];

/// The detectors an incremental scan runs on the changed files.
const PER_FILE_KINDS: [&str; 3] = ["secret", "ci_config", "todo_hotspot"];

impl Orchestrator {
    /// Scans only what changed since the last scan: the changed files
    /// (secrets, CI config, TODO hotspots) and the new commits (secrets in
    /// history). Falls back to a full scan when there is no earlier scan or
    /// history was rewritten.
    pub async fn scan_changes(
        &self,
        repo: Option<&str>,
        actor: Actor,
    ) -> OrchestratorResult<ScanReport> {
        let served = self.resolve_repo(repo)?;
        let served = served.as_ref();
        let _one_at_a_time = self.scan_turns.take().await;
        let head = served.repo.head_commit().await?;
        let last = self
            .store
            .last_repo_event_of_kind("scan_finished", served.name())
            .await?
            .and_then(|e| e.payload["commit"].as_str().map(str::to_owned));
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
        let scanner = self.scanner();
        let (allowlist, _) = self.secret_allowlist_at(&served.repo, &head).await;
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
                tx.append(NewEvent {
                    task_id: None,
                    actor,
                    kind: EventKind::ScanFinished,
                    payload: json!({
                        "repo": repo,
                        "commit": scanned,
                        "incremental": true,
                        "changed_files": scope.len(),
                        "new": changes.new,
                        "fixed": changes.fixed,
                    }),
                })?;
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
