//! The proactive scanner: reads the committed tree and the history, finds
//! what a careful teammate would fix, and keeps each finding under a stable
//! fingerprint. These detectors run no repository code: secrets in the tree
//! and in history, risky CI and container config, TODO hotspots, and docs
//! and developer-experience gaps.
//!
//! The scanner is a part of the orchestrator: built from handles to the
//! store, the repositories, the settings, the secret rules, the command
//! gate (for the policy its commands are judged by) and the runner, it
//! owns its turns and its schedule; a full scan is in `full`, an
//! incremental one in `incremental`, the findings' life in
//! `finding_admin`, and each detector is its own module.

mod advisories;
mod ci_config;
mod docs;
mod duplicates;
mod finding_admin;
mod full;
mod hotspots;
mod incremental;
mod lint;
mod proposals;
mod schedule;
mod secrets;
pub(crate) mod test_output;
mod test_runs;

use crate::command_gate::CommandGate;
use crate::current::Current;
use crate::error::OrchestratorResult;
use crate::orchestrator::Orchestrator;
use crate::repositories::Repositories;
use crate::settings::Settings;
use pushpals_core::Actor;
use pushpals_sandbox::Runner;
use pushpals_store::Store;
use pushpals_store::findings::{Finding, ScanChanges};
use pushpals_workspace::SecretScanner;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most files read in one scan.
const MAX_FILES: usize = 20_000;
/// Largest file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// See the module's documentation.
pub(crate) struct Scanner {
    store: Store,
    repos: Arc<Repositories>,
    settings: Arc<Current<Settings>>,
    secrets: Arc<Current<SecretScanner>>,
    gate: Arc<CommandGate>,
    runner: Arc<dyn Runner>,
    /// Where scans export their scratch trees (the data directory).
    scratch_root: PathBuf,
    turns: ScanTurns,
}

/// What a scanner is built from.
pub(crate) struct ScannerHandles {
    pub store: Store,
    pub repos: Arc<Repositories>,
    pub settings: Arc<Current<Settings>>,
    pub secrets: Arc<Current<SecretScanner>>,
    pub gate: Arc<CommandGate>,
    pub runner: Arc<dyn Runner>,
    pub scratch_root: PathBuf,
}

impl Scanner {
    /// A scanner over these handles.
    pub(crate) fn new(handles: ScannerHandles) -> Self {
        let ScannerHandles {
            store,
            repos,
            settings,
            secrets,
            gate,
            runner,
            scratch_root,
        } = handles;
        Self {
            store,
            repos,
            settings,
            secrets,
            gate,
            runner,
            scratch_root,
            turns: ScanTurns::default(),
        }
    }
}

impl Orchestrator {
    /// Scans a repository's HEAD commit (the only one's when `repo` is
    /// `None`) with every detector and records the findings.
    pub async fn scan(&self, repo: Option<&str>, actor: Actor) -> OrchestratorResult<ScanReport> {
        let served = self.resolve_repo(repo)?;
        self.scanner.scan(&served, actor).await
    }

    /// Scans only what changed since a repository's last scan (a full scan
    /// when there is none, or history was rewritten).
    pub async fn scan_changes(
        &self,
        repo: Option<&str>,
        actor: Actor,
    ) -> OrchestratorResult<ScanReport> {
        let served = self.resolve_repo(repo)?;
        self.scanner.scan_changes(&served, actor).await
    }

    /// Dismisses a finding (it stays dismissed on later scans).
    pub async fn dismiss_finding(
        &self,
        repo: Option<&str>,
        fingerprint: &str,
        reason: &str,
        actor: Actor,
    ) -> OrchestratorResult<()> {
        self.scanner
            .dismiss_finding(repo, fingerprint, reason, actor)
            .await
    }

    /// Scans each repository on its schedule for as long as the
    /// orchestrator lives.
    pub fn spawn_scanner(&self) {
        self.scanner.spawn_schedule();
    }
}

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

/// Whether `program` is on this machine's PATH.
fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
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
