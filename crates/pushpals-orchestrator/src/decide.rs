//! Deciding approvals, and carrying out what an approval lets happen.

use crate::authorize::{ApprovalScope, CommandAnswer};
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use pushpals_core::payload::{CheckResult, Commit, PolicyUpdated};
use pushpals_core::{
    Actor, Approval, ApprovalAction, ApprovalId, Decision, NewEvent, Task, TaskId, TaskState,
};
use pushpals_store::TaskUpdate;
use serde::Serialize;
use serde_json::json;
use std::path::Path;

/// What a decision led to.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionOutcome {
    /// The decided approval.
    pub approval: Approval,
    /// The task afterwards.
    pub task: Task,
}

impl Orchestrator {
    /// Asks for merging a committed task's branch into the base branch.
    pub async fn request_merge(&self, task_id: &TaskId) -> OrchestratorResult<Approval> {
        self.delivery.request_merge(task_id).await
    }

    /// Carries out an approved push, pull request or merge (the delivery
    /// part), then, after a push, opens the offered pull request at once
    /// under an auto-pr grant.
    pub(crate) async fn deliver_approved(
        &self,
        approval: Approval,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        let outcome = self.delivery.deliver(approval, decided_by, reason).await?;
        if outcome.approval.action == ApprovalAction::Push {
            self.apply_pr_grant(&outcome.task.id).await;
        }
        Ok(outcome)
    }

    /// Decides the single pending approval of a task (of `action`, when
    /// given). Refuses, listing them, when several are pending.
    pub async fn decide_for_task(
        &self,
        task_id: &TaskId,
        action: Option<ApprovalAction>,
        decision: Decision,
        scope: ApprovalScope,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        self.store.task(task_id).await?;
        let pending: Vec<Approval> = self
            .store
            .approvals(Some(task_id.clone()), true)
            .await?
            .into_iter()
            .filter(|a| action.is_none_or(|wanted| a.action == wanted))
            .collect();
        match pending.as_slice() {
            [] => Err(OrchestratorError::NoPendingApproval(task_id.clone())),
            [one] => {
                self.decide(one.id, decision, scope, decided_by, reason)
                    .await
            }
            _ => Err(OrchestratorError::SeveralPending {
                task_id: task_id.clone(),
                pending,
            }),
        }
    }

    /// Decides an approval by its id, then carries out an approved action.
    /// `scope` matters for command approvals: `task` lets the same command
    /// line run without asking for the rest of the task.
    pub async fn decide(
        &self,
        approval_id: ApprovalId,
        decision: Decision,
        scope: ApprovalScope,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        let approval = self.store.approval(approval_id).await?;
        match approval.action {
            ApprovalAction::Commit => {}
            ApprovalAction::Command => {
                return self
                    .decide_command(approval_id, decision, scope, decided_by, reason)
                    .await;
            }
            ApprovalAction::Push | ApprovalAction::Pr | ApprovalAction::Merge
                if decision == Decision::Deny =>
            {
                return self.deny_delivery(approval, decided_by, reason).await;
            }
            ApprovalAction::Push | ApprovalAction::Pr | ApprovalAction::Merge => {
                return self.deliver_approved(approval, decided_by, reason).await;
            }
        }
        if decision == Decision::Approve {
            let task = self.store.task(&approval.task_id).await?;
            let open = self.open_secret_findings(&task).await?;
            if !open.is_empty() {
                return Err(OrchestratorError::SecretsBlocked {
                    task_id: task.id,
                    findings: open,
                });
            }
        }
        let by = decided_by.to_owned();
        let task_id = approval.task_id.clone();
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

    /// Denies a push, pull request or merge: recorded, nothing else happens.
    async fn deny_delivery(
        &self,
        approval: Approval,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        let by = decided_by.to_owned();
        let approval_id = approval.id;
        let approval = self
            .store
            .write(move |tx| {
                tx.decide_approval(approval_id, Decision::Deny, &by, reason.as_deref())
            })
            .await?;
        let task = self.store.task(&approval.task_id).await?;
        Ok(DecisionOutcome { approval, task })
    }

    /// Records a decision on a command approval and hands it to the task's
    /// waiting driver, which runs the command or fails the step.
    async fn decide_command(
        &self,
        approval_id: ApprovalId,
        decision: Decision,
        scope: ApprovalScope,
        decided_by: &str,
        reason: Option<String>,
    ) -> OrchestratorResult<DecisionOutcome> {
        let rules_text = if decision == Decision::Approve && scope == ApprovalScope::Always {
            Some(self.always_allow_rules(approval_id)?)
        } else {
            None
        };
        let by = decided_by.to_owned();
        let recorded_reason = reason.clone();
        let approval = self
            .store
            .write(move |tx| {
                tx.decide_approval(approval_id, decision, &by, recorded_reason.as_deref())
            })
            .await?;
        if let Some(rules_text) = rules_text {
            self.add_user_rules(&approval.task_id, decided_by, &rules_text)
                .await?;
        }
        let answered = self.gate.answer(
            approval_id,
            CommandAnswer {
                decision,
                scope,
                by: decided_by.to_owned(),
                reason,
            },
        );
        if !answered {
            tracing::info!(
                approval_id,
                "no driver waits for this command approval any more"
            );
        }
        let task = self.store.task(&approval.task_id).await?;
        Ok(DecisionOutcome { approval, task })
    }

    /// The TOML of the rules that "always allow" the command an approval
    /// waits on; an error when it cannot become a pattern.
    fn always_allow_rules(&self, approval_id: ApprovalId) -> OrchestratorResult<String> {
        if self.gate.user_policy_file().is_none() {
            return Err(OrchestratorError::InvalidInput(
                "no user policy file is configured, so \"always\" cannot be recorded; approve once or for the task".into(),
            ));
        }
        let command_line = self.gate.waiting_command(approval_id).ok_or_else(|| {
            OrchestratorError::InvalidInput(
                "no task waits on this approval any more, so there is nothing to always allow"
                    .into(),
            )
        })?;
        let rules = self
            .current_policy()?
            .pattern_rules(&command_line)
            .map_err(|why| {
                OrchestratorError::InvalidInput(format!("cannot always allow: {why}"))
            })?;
        Ok(rules
            .iter()
            .map(|r| r.to_toml())
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Appends rules to the person's policy file (checked, written whole
    /// and renamed into place), reloads the policy and records it.
    async fn add_user_rules(
        &self,
        task_id: &TaskId,
        decided_by: &str,
        rules_text: &str,
    ) -> OrchestratorResult<()> {
        let path = self
            .gate
            .user_policy_file()
            .ok_or_else(|| OrchestratorError::Internal("the user policy file vanished".into()))?;
        let existing = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(OrchestratorError::Internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        let mut updated = existing;
        if !updated.is_empty() && !updated.ends_with('\n') {
            updated.push('\n');
        }
        updated.push_str(&format!(
            "\n# Added by Push Pals on {} when {decided_by} chose \"always\".\n{rules_text}",
            pushpals_core::timestamp::now()
        ));
        let source = path.display().to_string();
        let rules = pushpals_policy::RuleSet::from_toml(&updated, &source).map_err(|e| {
            OrchestratorError::Internal(format!("the updated policy would not load: {e}"))
        })?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                OrchestratorError::Internal(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let temporary = path.with_extension("toml.new");
        std::fs::write(&temporary, &updated)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| {
                OrchestratorError::Internal(format!("cannot write {}: {e}", path.display()))
            })?;
        self.gate.add_user_rules(rules);
        let id = task_id.clone();
        let by = decided_by.to_owned();
        let added = rules_text.to_owned();
        self.store
            .write(move |tx| {
                let updated = PolicyUpdated {
                    file: source,
                    added_rules: added,
                };
                tx.append(NewEvent::typed(Some(&id), Actor::User(by), &updated)?)
            })
            .await?;
        Ok(())
    }

    /// Commits an approved task's worktree on its branch.
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
                self.delivery.offer_push(&task).await?;
                self.apply_push_grant(&task.id).await;
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
    pub(crate) async fn record_commit(
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

    /// Subject from the title; body from what the task ran (or the agent's
    /// summary) and its checks.
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
