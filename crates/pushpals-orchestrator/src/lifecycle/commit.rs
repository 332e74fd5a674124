//! The end of a task's run: its diff recorded and a commit approval asked
//! (or no changes), then that approval answered. An approved commit
//! is made on the task's branch (unless the secret gate blocks it), and
//! delivery then offers its push; under an auto-commit grant the approval
//! is answered at once.

use super::{Lifecycle, StepResult, Stop};
use crate::decide::DecisionOutcome;
use crate::error::{OrchestratorError, OrchestratorResult};
use pushpals_core::payload::{CheckResult, Commit, DiffFileCount, DiffRecorded, SecretsFound};
use pushpals_core::{
    Actor, Approval, ApprovalAction, ApprovalId, Decision, GrantKind, NewEvent, Task, TaskId,
    TaskState,
};
use pushpals_store::TaskUpdate;
use serde_json::{Value, json};
use std::path::Path;

impl Lifecycle {
    /// Diffs the worktree: no changes ends the task, else asks for a commit.
    pub(super) async fn finish(
        &self,
        task_id: &TaskId,
        task: &Task,
        checks: Vec<Value>,
    ) -> StepResult<()> {
        let base = task.base_commit.clone().unwrap_or_default();
        let served = self.served(&task.repo)?;
        let worktree = served.repo.worktree(
            std::path::Path::new(task.worktree_path.as_deref().unwrap_or_default()),
            &base,
        );
        let diff = worktree
            .diff()
            .await
            .map_err(|e| Stop::Failed(format!("cannot diff the worktree: {e}")))?;
        // Nothing new to commit (a continued run may sit on earlier commits
        // of the task): no changes.
        let uncommitted = worktree
            .uncommitted()
            .await
            .map_err(|e| Stop::Failed(format!("cannot diff the worktree: {e}")))?;
        let id = task_id.clone();
        if uncommitted.is_empty() {
            self.store
                .write(move |tx| {
                    tx.transition(
                        &id,
                        TaskState::NoChanges,
                        TaskUpdate::default(),
                        Actor::Orchestrator,
                        json!({ "checks": checks }),
                    )
                })
                .await?;
            return Ok(());
        }
        let files: Vec<DiffFileCount> = diff
            .files
            .iter()
            .map(|f| DiffFileCount {
                path: f.path.clone(),
                added: f.added,
                removed: f.removed,
            })
            .collect();
        let summary = format!(
            "Commit {} changed file{} on {}: {}",
            diff.files.len(),
            if diff.files.len() == 1 { "" } else { "s" },
            task.branch,
            task.title
        );
        let scanner = self.scanner();
        let base = task.base_commit.clone().unwrap_or_default();
        let findings =
            crate::secret_gate::unallowed(&served.repo, &base, scanner.scan_diff(&diff.text)).await;
        let summary = if findings.is_empty() {
            summary
        } else {
            format!(
                "BLOCKED by the secret gate ({} possible secret{}): {summary}",
                findings.len(),
                if findings.len() == 1 { "" } else { "s" }
            )
        };
        let text = scanner.redact(&diff.text).into_owned().into_bytes();
        let approval = self
            .store
            .write(move |tx| {
                let blob = tx.put_blob(&text)?;
                let recorded = DiffRecorded {
                    files: files.clone(),
                    diff_blob: blob,
                    bytes: text.len() as u64,
                };
                tx.append(NewEvent::typed(Some(&id), Actor::Orchestrator, &recorded)?)?;
                if !findings.is_empty() {
                    let found = SecretsFound {
                        findings: findings
                            .iter()
                            .map(serde_json::to_value)
                            .collect::<Result<_, _>>()?,
                    };
                    tx.append(NewEvent::typed(Some(&id), Actor::Orchestrator, &found)?)?;
                }
                tx.transition(
                    &id,
                    TaskState::AwaitingApproval,
                    TaskUpdate::default(),
                    Actor::Orchestrator,
                    json!({ "checks": checks }),
                )?;
                tx.request_approval(
                    &id,
                    ApprovalAction::Commit,
                    &summary,
                    json!({ "files": files, "checks": checks }),
                )
            })
            .await?;
        self.apply_commit_grant(task_id, approval.id).await;
        Ok(())
    }

    /// Decides a commit approval: a denial rejects the task; an approval
    /// is refused while the secret gate holds findings, else recorded and
    /// the commit made. The decision is recorded before git runs, so a
    /// second answer finds it decided.
    pub(crate) async fn decide_commit(
        &self,
        approval: Approval,
        decision: Decision,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        if decision == Decision::Approve {
            let task = self.store.task(&approval.task_id).await?;
            let served = self.served(&task.repo)?;
            let open =
                crate::secret_gate::open_findings(&self.store, &served, &self.scanner(), &task)
                    .await?;
            if !open.is_empty() {
                return Err(OrchestratorError::SecretsBlocked {
                    task_id: task.id,
                    findings: open,
                });
            }
        }
        let by = decided_by.to_owned();
        let task_id = approval.task_id.clone();
        let approval_id = approval.id;
        let (approval, task) = self
            .store
            .write(move |tx| {
                let approval = tx.decide_approval(approval_id, decision, &by, reason.as_deref())?;
                let task = match decision {
                    Decision::Approve => tx.task(&task_id)?,
                    Decision::Deny => tx.transition(
                        &task_id,
                        TaskState::Rejected,
                        TaskUpdate {
                            reason: Some(match &reason {
                                Some(reason) => format!("denied by {by}: {reason}"),
                                None => format!("denied by {by}"),
                            }),
                            ..TaskUpdate::default()
                        },
                        Actor::User(by.clone()),
                        json!({ "approval_id": approval_id }),
                    )?,
                };
                Ok((approval, task))
            })
            .await?;
        let task = match decision {
            Decision::Deny => task,
            Decision::Approve => self.commit(task).await?,
        };
        Ok(DecisionOutcome { approval, task })
    }

    /// After the checks passed and a commit approval was asked: commits at
    /// once under an auto-commit grant (unless the secret gate blocks).
    pub(super) async fn apply_commit_grant(&self, task_id: &TaskId, approval_id: ApprovalId) {
        let Ok(Some(grant)) =
            crate::autonomy::grant_in_force(&self.store, task_id, GrantKind::AutoCommit).await
        else {
            return;
        };
        let Ok(approval) = self.store.approval(approval_id).await else {
            return;
        };
        let by = format!("auto-commit grant (given by {})", grant.granted_by);
        match self
            .decide_commit(approval, Decision::Approve, &by, None)
            .await
        {
            Ok(_) => {}
            Err(OrchestratorError::SecretsBlocked { .. }) => {
                tracing::info!(%task_id, "auto-commit held back by the secret gate");
            }
            Err(error) => tracing::warn!(%task_id, %error, "auto-commit failed"),
        }
    }

    /// Commits an approved task's worktree on its branch; delivery then
    /// offers its push.
    async fn commit(&self, task: Task) -> OrchestratorResult<Task> {
        let (Some(path), Some(base)) = (task.worktree_path.clone(), task.base_commit.clone())
        else {
            return Err(OrchestratorError::WrongState {
                task_id: task.id,
                state: task.state,
                what: "it has no worktree to commit".into(),
            });
        };
        let message = self.commit_message(&task).await?;
        let served = self.served(&task.repo)?;
        let worktree = served.repo.worktree(Path::new(&path), &base);
        let id = task.id.clone();
        match worktree.commit(&message, &self.settings().identity()).await {
            Ok(sha) => {
                let task = self.record_commit(&task, sha, message, false).await?;
                self.delivery.after_commit(&task).await?;
                Ok(self.store.task(&task.id).await?)
            }
            Err(error) => {
                self.fail(&id, format!("the commit failed: {error}"))
                    .await?;
                Ok(self.store.task(&id).await?)
            }
        }
    }

    /// Records a commit git made on the task's branch and moves the task
    /// to committed, in one write; `recovered` when a restart found it.
    pub(super) async fn record_commit(
        &self,
        task: &Task,
        sha: String,
        message: String,
        recovered: bool,
    ) -> OrchestratorResult<Task> {
        let id = task.id.clone();
        let branch = task.branch.clone();
        Ok(self
            .store
            .write(move |tx| {
                let mut moved = json!({ "sha": sha });
                if recovered {
                    moved["on"] = json!("restart");
                }
                tx.append(NewEvent::typed(
                    Some(&id),
                    Actor::Orchestrator,
                    &Commit {
                        sha: sha.clone(),
                        branch: branch.clone(),
                        message: message.clone(),
                        recovered,
                    },
                )?)?;
                tx.transition(
                    &id,
                    TaskState::Committed,
                    TaskUpdate {
                        commit_sha: Some(sha.clone()),
                        ..TaskUpdate::default()
                    },
                    Actor::Orchestrator,
                    moved,
                )
            })
            .await?)
    }

    /// The message an approved commit gets: subject from the title; body
    /// from what the task ran (or the agent's summary) and its checks.
    pub(crate) async fn commit_message(&self, task: &Task) -> OrchestratorResult<String> {
        let events = self.task_events(&task.id).await?;
        let mut body = String::new();
        for command in crate::summary::commands_run(task, &events) {
            body.push_str(&format!("Ran: {command}\n"));
        }
        // An agent task's body is the agent's own summary of its last run.
        if let Some(summary) = crate::summary::agent_summary(&events) {
            body.push_str(&summary);
            body.push_str("\n\n");
        }
        let checks: Vec<String> = events
            .iter()
            .filter_map(|e| e.read::<CheckResult>())
            .map(|c| format!("{} {}", c.check, if c.passed { "passed" } else { "failed" }))
            .collect();
        if checks.is_empty() {
            body.push_str("Checks: none configured in pushpals.toml\n");
        } else {
            body.push_str(&format!("Checks: {}\n", checks.join(", ")));
        }
        Ok(format!(
            "{}\n\n{body}\nPushpals-Task: {}\n",
            task.title, task.id
        ))
    }
}
