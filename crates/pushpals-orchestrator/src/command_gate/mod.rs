//! The command gate, a part of the orchestrator: the command policy in
//! force (built-in rules and the person's; a repository's own are added per
//! task), the person's policy file where "always allow" writes, the command
//! lines allowed for the rest of a task, and the drivers waiting on a
//! command approval.
//!
//! It owns these behind its own locks and a narrow interface, and records
//! through its store handle; the flow of judging, asking and waiting is in
//! `authorize`, a person's answer to a command approval in `answer`.

mod answer;
mod authorize;

use crate::error::{OrchestratorError, OrchestratorResult};
pub use authorize::ApprovalScope;
pub(crate) use authorize::{CommandAnswer, Refusal};
use pushpals_core::{ApprovalId, TaskId};
use pushpals_policy::{Policy, RuleSet};
use pushpals_store::Store;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use tokio::sync::oneshot;

/// A driver waiting on an approval: the command line it waits to run and
/// where its answer goes.
type Waiter = (String, oneshot::Sender<CommandAnswer>);

/// See the module's documentation.
pub(crate) struct CommandGate {
    store: Store,
    policy: RwLock<Policy>,
    user_policy_file: Mutex<Option<PathBuf>>,
    granted: Mutex<HashMap<TaskId, HashSet<String>>>,
    waiters: Mutex<HashMap<ApprovalId, Waiter>>,
}

impl CommandGate {
    /// A gate with `policy` in force and nothing granted or waiting,
    /// recording in `store`.
    pub(crate) fn new(policy: Policy, store: Store) -> Self {
        Self {
            store,
            policy: RwLock::new(policy),
            user_policy_file: Mutex::new(None),
            granted: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
        }
    }

    /// The built-in and user policy in force.
    pub(crate) fn policy(&self) -> OrchestratorResult<Policy> {
        self.policy
            .read()
            .map(|policy| policy.clone())
            .map_err(|_| OrchestratorError::Internal("the policy lock is poisoned".into()))
    }

    /// Adds the person's new rules to the policy in force.
    pub(crate) fn add_user_rules(&self, rules: RuleSet) {
        if let Ok(mut policy) = self.policy.write() {
            *policy = policy.clone().with_user_rules(rules);
        }
    }

    /// Names the person's policy file.
    pub(crate) fn set_user_policy_file(&self, path: PathBuf) {
        if let Ok(mut file) = self.user_policy_file.lock() {
            *file = Some(path);
        }
    }

    /// The person's policy file, when one is named.
    pub(crate) fn user_policy_file(&self) -> Option<PathBuf> {
        self.user_policy_file.lock().ok().and_then(|f| f.clone())
    }

    /// Lets `command_line` run without asking for the rest of the task.
    pub(crate) fn grant(&self, task_id: &TaskId, command_line: &str) {
        if let Ok(mut granted) = self.granted.lock() {
            granted
                .entry(task_id.clone())
                .or_default()
                .insert(command_line.to_owned());
        }
    }

    /// Whether `command_line` was allowed for the rest of the task.
    pub(crate) fn is_granted(&self, task_id: &TaskId, command_line: &str) -> bool {
        self.granted.lock().is_ok_and(|granted| {
            granted
                .get(task_id)
                .is_some_and(|lines| lines.contains(command_line))
        })
    }

    /// Registers a driver waiting on `approval_id` to run `command_line`;
    /// its answer arrives on the receiver.
    pub(crate) fn wait_for(
        &self,
        approval_id: ApprovalId,
        command_line: &str,
    ) -> oneshot::Receiver<CommandAnswer> {
        let (sender, answered) = oneshot::channel();
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.insert(approval_id, (command_line.to_owned(), sender));
        }
        answered
    }

    /// Hands a decision to the driver waiting on it; false when none waits.
    pub(crate) fn answer(&self, approval_id: ApprovalId, answer: CommandAnswer) -> bool {
        let waiter = self
            .waiters
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&approval_id));
        waiter.is_some_and(|(_, sender)| sender.send(answer).is_ok())
    }

    /// The command line a driver waits to run for this approval.
    pub(crate) fn waiting_command(&self, approval_id: ApprovalId) -> Option<String> {
        self.waiters
            .lock()
            .ok()
            .and_then(|w| w.get(&approval_id).map(|(line, _)| line.clone()))
    }

    /// Forgets a driver's wait (it was answered or gave up).
    pub(crate) fn forget(&self, approval_id: ApprovalId) {
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.remove(&approval_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command_gate::ApprovalScope;
    use pushpals_core::Decision;

    /// A gate over a fresh store (kept while the directory lives).
    fn gate() -> (CommandGate, tempfile::TempDir) {
        let data = tempfile::tempdir().unwrap();
        let store = Store::open(data.path(), pushpals_store::Durability::Normal).unwrap();
        (CommandGate::new(Policy::builtin().unwrap(), store), data)
    }

    fn task(n: u8) -> TaskId {
        TaskId::parse(&format!("task-{n}")).unwrap()
    }

    fn answer() -> CommandAnswer {
        CommandAnswer {
            decision: Decision::Approve,
            scope: ApprovalScope::Once,
            by: "tester".into(),
            reason: None,
        }
    }

    #[test]
    fn grants_are_per_task_and_per_line() {
        let (gate, _data) = gate();
        gate.grant(&task(1), "make test");
        assert!(gate.is_granted(&task(1), "make test"));
        assert!(!gate.is_granted(&task(1), "make test; rm -rf ~"));
        assert!(!gate.is_granted(&task(2), "make test"));
    }

    #[test]
    fn an_answer_reaches_its_waiter_once() {
        let (gate, _data) = gate();
        let id = 7;
        let mut answered = gate.wait_for(id, "make deploy");
        assert_eq!(gate.waiting_command(id).as_deref(), Some("make deploy"));
        assert!(gate.answer(id, answer()));
        assert!(answered.try_recv().is_ok());
        assert!(!gate.answer(id, answer()), "nobody waits any more");
        assert_eq!(gate.waiting_command(id), None);
        let _gone = gate.wait_for(8, "x");
        gate.forget(8);
        assert!(!gate.answer(8, answer()));
    }
}
