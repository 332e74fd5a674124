//! Continuing an ended task: a new run in the same worktree and on the
//! same branch, with a new command, the person's feedback, or (after a
//! stop) what the cut-short run still owed.

use super::Lifecycle;
use crate::error::{OrchestratorError, OrchestratorResult};
use pushpals_core::{Actor, Task, TaskId, TaskState};
use pushpals_store::TaskUpdate;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

impl Lifecycle {
    /// Continues an ended task with a new command: a new run in the same
    /// worktree and on the same branch (on top of what it committed).
    /// Its pending approvals are withdrawn.
    pub(crate) async fn continue_task(
        self: &Arc<Self>,
        task_id: &TaskId,
        command: Option<String>,
        approve_command: bool,
        actor: Actor,
    ) -> OrchestratorResult<Task> {
        let task = self.store.task(task_id).await?;
        // An agent task takes the text as the person's feedback for its
        // next run; a command task as the command to run.
        let (command, feedback) = if task.agent.is_some() {
            let feedback = command.filter(|f| !f.trim().is_empty());
            if let Some(text) = &feedback {
                self.refuse_secrets(text, "the feedback")?;
            }
            (None, feedback)
        } else {
            // Without a new command, the task's own command runs again.
            let command = command.or_else(|| task.command.clone());
            (Some(self.checked_command(&task.title, command)?), None)
        };
        if !task.state.is_final() {
            return Err(OrchestratorError::WrongState {
                task_id: task.id,
                state: task.state,
                what: "only an ended task can be continued".into(),
            });
        }
        // The last run's driver may be finishing its bookkeeping.
        let mut still_running = true;
        for _ in 0..100 {
            still_running = self.cancels.is_running(&task.id);
            if !still_running {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if still_running {
            return Err(OrchestratorError::WrongState {
                task_id: task.id,
                state: task.state,
                what: "its last run is still stopping; try again in a moment".into(),
            });
        }
        // A task stopped before it got its worktree starts afresh; one
        // whose worktree was removed cannot go on where it was.
        let never_prepared = task.worktree_path.is_none() && task.base_commit.is_none();
        if !never_prepared
            && !task
                .worktree_path
                .as_deref()
                .is_some_and(|p| Path::new(p).is_dir())
        {
            return Err(OrchestratorError::WrongState {
                task_id: task.id,
                state: task.state,
                what: "its worktree was removed; start a new task instead".into(),
            });
        }
        // A command task stopped after its command ran (during its checks)
        // and continued without a new command only needs its checks again:
        // running the command twice would apply its change twice.
        let checks_only = task.agent.is_none()
            && command == task.command
            && task.state == TaskState::Interrupted
            && crate::summary::worker_finished_in_last_run(&self.task_events(&task.id).await?);
        let id = task.id.clone();
        let by = actor.to_string();
        let line = command.clone();
        let said = feedback.clone();
        let task = self
            .store
            .write(move |tx| {
                for approval in tx.pending_approvals(&id)? {
                    tx.withdraw_approval(approval.id, &by, Some("the task was continued"))?;
                }
                tx.transition(
                    &id,
                    TaskState::Queued,
                    TaskUpdate {
                        command: line.clone(),
                        clear_reason: true,
                        ..TaskUpdate::default()
                    },
                    actor,
                    json!({
                        "continued": true,
                        "command": line,
                        "feedback": said,
                        "approve_command": approve_command,
                        "checks_only": checks_only,
                    }),
                )
            })
            .await?;
        if let Some(text) = feedback {
            self.inboxes.post(
                &task.id,
                format!("the person's feedback on your last run: {text}"),
            );
        }
        if approve_command && let Some(command) = &command {
            self.gate.grant(&task.id, command);
        }
        self.spawn_driver(task.id.clone());
        Ok(task)
    }
}
