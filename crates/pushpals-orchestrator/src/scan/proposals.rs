//! From findings to a small reviewable change: a proposal bundles a few
//! findings of one concern with a rationale in plain words, and becomes an
//! ordinary agent task (checks, diff, secret gate, approval, push, PR).

use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::{NewTask, Orchestrator};
use pushpals_core::payload::ProposalCreated;
use pushpals_core::{Actor, AgentWork, EventKind, NewEvent, Task};
use pushpals_store::findings::Finding;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Most findings in one proposal.
const MAX_FINDINGS: usize = 5;
/// Most files one proposal may touch.
const MAX_FILES: usize = 5;
/// The plan id prefix that marks a task as a proposal.
pub(crate) const PROPOSAL_PREFIX: &str = "proposal-";

/// Why a kind of finding matters, for the rationale.
fn why(kind: &str) -> &'static str {
    match kind {
        "secret" => {
            "A secret in the repository can be read by anyone who can read the code, and stays in its history."
        }
        "secret_history" => {
            "A secret that was ever committed is exposed: it must be rotated, and the code should read it from the environment."
        }
        "ci_config" => {
            "CI runs with the repository's secrets and write access; risky configuration lets untrusted code reach them."
        }
        "todo_hotspot" => "Unfinished work in a file that changes often is where bugs come from.",
        "docs" => {
            "Newcomers and tools rely on the README, links and lock files to build and test the project."
        }
        "failing_test" => "A failing test hides new failures and blocks every change.",
        "flaky_test" => "A flaky test teaches everyone to ignore red builds.",
        "broken_check" => "A check that cannot run tests nothing, so every change goes unchecked.",
        _ => "It makes the code harder to trust.",
    }
}

/// The rationale: what is wrong, why it matters, what to do, how it was
/// found.
pub(crate) fn rationale(findings: &[Finding]) -> String {
    let mut text = String::from("What is wrong:\n");
    for finding in findings {
        let place = match (&finding.file, finding.line) {
            (Some(file), Some(line)) => format!(" ({file}:{line})"),
            (Some(file), None) => format!(" ({file})"),
            _ => String::new(),
        };
        text.push_str(&format!("- {}{place}\n", finding.title));
    }
    text.push_str(&format!("\nWhy it matters: {}\n", why(&findings[0].kind)));
    text.push_str(
        "\nWhat the change does: the smallest edit that makes these findings go away, and nothing else.\n",
    );
    text.push_str("\nHow it was found (evidence):\n");
    for finding in findings {
        let evidence = finding.evidence.to_string();
        let evidence: String = if evidence.chars().count() > 600 {
            evidence
                .chars()
                .take(600)
                .chain(std::iter::once('…'))
                .collect()
        } else {
            evidence
        };
        text.push_str(&format!("- {}: {evidence}\n", finding.fingerprint));
    }
    text
}

impl Orchestrator {
    /// Bundles open findings of one kind into a task for the agent.
    pub async fn propose(
        self: &Arc<Self>,
        repo: Option<&str>,
        fingerprints: &[String],
        actor: Actor,
    ) -> OrchestratorResult<Task> {
        if fingerprints.is_empty() || fingerprints.len() > MAX_FINDINGS {
            return Err(OrchestratorError::InvalidInput(format!(
                "a proposal bundles 1 to {MAX_FINDINGS} findings"
            )));
        }
        let repo = match fingerprints.first() {
            Some(first) => match self.scanner.repo_of_finding(repo, first).await {
                Err(OrchestratorError::NotFound(_)) => {
                    return Err(OrchestratorError::NotFound(format!(
                        "no open finding {first}; `pushpals findings` lists them"
                    )));
                }
                other => other?,
            },
            None => String::new(),
        };
        let served = self.served(&repo)?;
        let open = self.scanner.open_findings(&repo).await?;
        let mut chosen = Vec::new();
        for fingerprint in fingerprints {
            let finding = open
                .iter()
                .find(|f| &f.fingerprint == fingerprint)
                .ok_or_else(|| {
                    OrchestratorError::NotFound(format!(
                        "no open finding {fingerprint}; `pushpals findings` lists them"
                    ))
                })?;
            chosen.push(finding.clone());
        }
        if chosen.iter().any(|f| f.kind != chosen[0].kind) {
            return Err(OrchestratorError::InvalidInput(
                "a proposal bundles findings of one kind (one concern); propose the others separately".into(),
            ));
        }
        let files: BTreeSet<String> = chosen.iter().filter_map(|f| f.file.clone()).collect();
        if files.len() > MAX_FILES {
            return Err(OrchestratorError::InvalidInput(format!(
                "a proposal touches at most {MAX_FILES} files"
            )));
        }
        let head = served.repo.head_commit().await?;
        let config = crate::checks::repo_config_at(&served.repo, &head)
            .await
            .unwrap_or_default();
        // Open proposals: tasks not ended whose log has a proposal.
        let mut open_proposals = 0;
        for task in self.store.tasks(None).await? {
            if task.state.is_final() {
                continue;
            }
            let events = self
                .store
                .events(pushpals_store::EventQuery {
                    task_id: Some(task.id.clone()),
                    limit: Some(500),
                    ..Default::default()
                })
                .await?;
            if events
                .iter()
                .any(|e| e.kind == EventKind::ProposalCreated.as_str())
            {
                open_proposals += 1;
            }
        }
        // No proposal over the files of a task still at work.
        for task in self.store.tasks(None).await? {
            if task.state.is_final() || task.repo != repo {
                continue;
            }
            if let (Some(path), Some(base)) = (&task.worktree_path, &task.base_commit) {
                let changed = served
                    .repo
                    .worktree(std::path::Path::new(path), base)
                    .diff()
                    .await
                    .map(|d| d.files.into_iter().map(|f| f.path).collect::<Vec<_>>())
                    .unwrap_or_default();
                if let Some(file) = changed.iter().find(|f| files.contains(*f)) {
                    return Err(OrchestratorError::InvalidInput(format!(
                        "task {} is still working on {file}; propose this once it has ended",
                        task.id
                    )));
                }
            }
        }
        if open_proposals >= config.scan.max_open_proposals {
            return Err(OrchestratorError::InvalidInput(format!(
                "{open_proposals} proposals are still open (at most {} per repository, [scan] max_open_proposals); decide those first",
                config.scan.max_open_proposals
            )));
        }
        let why = rationale(&chosen);
        let title: String = if chosen.len() == 1 {
            format!("Fix: {}", chosen[0].title)
        } else {
            format!(
                "Fix {} {} findings",
                chosen.len(),
                chosen[0].kind.replace('_', " ")
            )
        }
        .chars()
        .take(190)
        .collect();
        let prompt = format!(
            "{why}\nMake that change. Keep it small and touch only what these findings need. \
             Run the relevant checks before you finish, and say in your summary how each finding was fixed."
        );
        // A tool's own fixer where it has one: a mechanical change, no model.
        let fixer = chosen
            .iter()
            .map(|f| f.evidence["fixer"].as_str())
            .collect::<Option<BTreeSet<&str>>>()
            .filter(|fixers| fixers.len() == 1 && chosen[0].kind == "lint")
            .and_then(|fixers| fixers.into_iter().next().map(str::to_owned));
        let task = if let Some(command) = fixer {
            self.create_task(
                NewTask {
                    title,
                    command: Some(command),
                    agent: None,
                    approve_command: false,
                    repo: Some(repo.clone()),
                },
                actor.clone(),
            )
            .await?
        } else {
            self.create_task(
                NewTask {
                    title,
                    command: None,
                    agent: Some(AgentWork {
                        prompt,
                        scope: files.into_iter().collect(),
                        acceptance: vec!["`pushpals scan` no longer reports these findings".into()],
                        depends_on: Vec::new(),
                        plan_id: Some(format!("{PROPOSAL_PREFIX}{}", chosen[0].fingerprint)),
                        model: None,
                        external: self.settings().agent.external.clone(),
                    }),
                    approve_command: false,
                    repo: Some(repo.clone()),
                },
                actor.clone(),
            )
            .await?
        };
        let id = task.id.clone();
        let proposal = ProposalCreated {
            findings: chosen.iter().map(|f| f.fingerprint.clone()).collect(),
            rationale: why.to_owned(),
        };
        let event = NewEvent::typed(Some(&id), actor, &proposal)?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(task)
    }
}
