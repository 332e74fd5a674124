//! The judge of an external agent's tool calls (through its hook): shell
//! commands pass the same policy gate as every command of the task (an
//! `ask` waits for the person), file writes the same worktree fence, and
//! tools that would reach the network are refused.

use crate::command_gate::CommandGate;
use crate::command_gate::Refusal;
use pushpals_agent::gateway::JudgeFuture;
use pushpals_agent::{Judge, ToolUse, Verdict};
use pushpals_core::payload::PolicyDecision;
use pushpals_core::{Actor, NewEvent, TaskId, TaskState};
use pushpals_policy::Policy;
use pushpals_store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::watch;

/// Tools that write files, and the input field naming the file.
const WRITING_TOOLS: &[(&str, &str)] = &[
    ("Edit", "file_path"),
    ("MultiEdit", "file_path"),
    ("Write", "file_path"),
    ("NotebookEdit", "notebook_path"),
];

/// Tools that reach the network, which agents' sandboxes do not have.
const NETWORK_TOOLS: &[&str] = &["WebFetch", "WebSearch"];

/// Judges one task's agent.
pub(crate) struct TaskJudge {
    gate: Arc<CommandGate>,
    store: Store,
    task: TaskId,
    policy: Policy,
    worktree: String,
    cancel: watch::Receiver<bool>,
    commands: Arc<AtomicU32>,
}

impl TaskJudge {
    /// A judge of the task's agent: its commands go through `gate`, its
    /// writes and refusals are recorded in `store`.
    pub(crate) fn new(
        gate: Arc<CommandGate>,
        store: Store,
        task: TaskId,
        policy: Policy,
        worktree: &str,
        cancel: watch::Receiver<bool>,
    ) -> Self {
        Self {
            gate,
            store,
            task,
            policy,
            worktree: worktree.trim_end_matches('/').to_owned(),
            cancel,
            commands: Arc::new(AtomicU32::new(0)),
        }
    }
}

impl Judge for TaskJudge {
    fn judge(&self, tool: ToolUse) -> JudgeFuture {
        let gate = Arc::clone(&self.gate);
        let store = self.store.clone();
        let task = self.task.clone();
        let policy = self.policy.clone();
        let worktree = self.worktree.clone();
        let cancel = self.cancel.clone();
        let commands = Arc::clone(&self.commands);
        Box::pin(async move {
            if tool.tool == "Bash" {
                let Some(command) = tool.input["command"].as_str() else {
                    return Verdict::Deny("a Bash call without a command".into());
                };
                let number = commands.fetch_add(1, Ordering::Relaxed) + 1;
                let step = format!("agent:bash:{number}");
                return match gate
                    .authorize(&policy, &task, &step, command, TaskState::Running, &cancel)
                    .await
                {
                    Ok(false) => Verdict::Allow("Push Pals policy allows this command".into()),
                    Ok(true) => Verdict::Allow(
                        "Push Pals policy allows this command; note that the agent's sandbox has no network".into(),
                    ),
                    Err(Refusal::Refused(reason)) => Verdict::Deny(reason),
                    Err(Refusal::Cancelled) => Verdict::Deny("the task was cancelled".into()),
                    Err(Refusal::Store(error)) => {
                        Verdict::Deny(format!("Push Pals could not record the decision: {error}"))
                    }
                };
            }
            let verdict = judge_tool(&tool, &worktree);
            // Refusals and every write are in the audit log; reading and
            // planning tools show as the agent's steps.
            let file = WRITING_TOOLS
                .iter()
                .find(|(name, _)| *name == tool.tool)
                .map(|(_, field)| tool.input[*field].clone());
            let (decision, reason) = match &verdict {
                Verdict::Allow(reason) => ("allow", reason),
                Verdict::Deny(reason) => ("deny", reason),
            };
            if decision == "deny" || file.is_some() {
                let recorded = PolicyDecision {
                    step: "agent:tool".into(),
                    tool: Some(tool.tool.to_string()),
                    file: file.unwrap_or(serde_json::Value::Null),
                    decision: Some(decision.into()),
                    reason: Some(reason.clone()),
                    ..PolicyDecision::default()
                };
                if let Err(error) = store
                    .write(move |tx| {
                        tx.append(NewEvent::typed(
                            Some(&task),
                            Actor::Orchestrator,
                            &recorded,
                        )?)
                    })
                    .await
                {
                    return Verdict::Deny(format!(
                        "Push Pals could not record the decision: {error}"
                    ));
                }
            }
            verdict
        })
    }
}

/// The verdict on a tool call that is not a shell command.
fn judge_tool(tool: &ToolUse, worktree: &str) -> Verdict {
    if NETWORK_TOOLS.contains(&tool.tool.as_str()) {
        return Verdict::Deny(format!(
            "{} needs the network, which agents' sandboxes do not have",
            tool.tool
        ));
    }
    let Some((_, field)) = WRITING_TOOLS.iter().find(|(name, _)| *name == tool.tool) else {
        return Verdict::Allow("reading and planning tools are allowed".into());
    };
    let Some(path) = tool.input[*field].as_str() else {
        return Verdict::Deny(format!("{} without a {field}", tool.tool));
    };
    let relative = match path.strip_prefix(worktree) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => path,
    };
    match pushpals_policy::paths::escapes_worktree(relative) {
        None => Verdict::Allow("the file is inside the task's worktree".into()),
        Some(reason) => Verdict::Deny(format!("{}: {reason}", tool.tool)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, input: serde_json::Value) -> ToolUse {
        ToolUse {
            tool: name.into(),
            input,
        }
    }

    #[test]
    fn writes_stay_in_the_worktree_and_the_network_is_refused() {
        let w = "/data/worktrees/t1";
        let allowed = |t: ToolUse| matches!(judge_tool(&t, w), Verdict::Allow(_));
        assert!(allowed(tool(
            "Edit",
            json!({ "file_path": "/data/worktrees/t1/src/a.rs" })
        )));
        assert!(allowed(tool("Write", json!({ "file_path": "src/new.rs" }))));
        assert!(allowed(tool("Read", json!({ "file_path": "/etc/hosts" }))));
        assert!(!allowed(tool(
            "Write",
            json!({ "file_path": "/data/worktrees/t2/a" })
        )));
        assert!(!allowed(tool(
            "Write",
            json!({ "file_path": "/data/worktrees/t1x/a" })
        )));
        assert!(!allowed(tool(
            "Edit",
            json!({ "file_path": "/data/worktrees/t1/../t2/a" })
        )));
        assert!(!allowed(tool(
            "Edit",
            json!({ "file_path": "/data/worktrees/t1/.git/config" })
        )));
        assert!(!allowed(tool(
            "NotebookEdit",
            json!({ "notebook_path": "/root/x.ipynb" })
        )));
        assert!(!allowed(tool("Edit", json!({}))));
        match judge_tool(
            &tool("WebFetch", json!({ "url": "https://example.org" })),
            w,
        ) {
            Verdict::Deny(reason) => assert!(reason.contains("network"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
