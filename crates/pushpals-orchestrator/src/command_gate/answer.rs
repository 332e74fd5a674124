//! A command approval answered: the decision is recorded, "always" adds
//! a rule to the person's policy file, and the answer goes to the driver
//! waiting on it, which runs the command or fails the step.

use super::CommandGate;
use crate::command_gate::{ApprovalScope, CommandAnswer};
use crate::decide::DecisionOutcome;
use crate::error::{OrchestratorError, OrchestratorResult};
use pushpals_core::payload::PolicyUpdated;
use pushpals_core::{Actor, ApprovalId, Decision, NewEvent, TaskId};

impl CommandGate {
    /// Records a decision on a command approval and hands it to the task's
    /// waiting driver, which runs the command or fails the step.
    pub(crate) async fn decide_command(
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
            self.write_user_rules(&approval.task_id, decided_by, &rules_text)
                .await?;
        }
        let answered = self.answer(
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
        if self.user_policy_file().is_none() {
            return Err(OrchestratorError::InvalidInput(
                "no user policy file is configured, so \"always\" cannot be recorded; approve once or for the task".into(),
            ));
        }
        let command_line = self.waiting_command(approval_id).ok_or_else(|| {
            OrchestratorError::InvalidInput(
                "no task waits on this approval any more, so there is nothing to always allow"
                    .into(),
            )
        })?;
        let rules = self.policy()?.pattern_rules(&command_line).map_err(|why| {
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
    async fn write_user_rules(
        &self,
        task_id: &TaskId,
        decided_by: &str,
        rules_text: &str,
    ) -> OrchestratorResult<()> {
        let path = self
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
        self.add_user_rules(rules);
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
}
