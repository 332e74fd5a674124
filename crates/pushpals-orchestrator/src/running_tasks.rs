//! What the orchestrator keeps in memory about tasks at work: each running
//! driver's cancel switch, the messages waiting for an agent task's next
//! step (the person's feedback, another task's message), and the runs held
//! by worker hosts. Each is a
//! small part owning its map behind its own lock; neither is the record
//! (the store is), and both are empty after a restart.

use pushpals_core::TaskId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The runs of tasks that a worker host holds, by task.
#[derive(Default)]
pub(crate) struct RemoteRuns(Mutex<HashMap<TaskId, HeldRemote>>);

/// A task's run on a worker and the runner its commands go through.
struct HeldRemote {
    run: Arc<crate::dispatch::RemoteRun>,
    /// The run, mirrored: each command starts from the worktree's files
    /// and what it changed comes back to them.
    mirrored: Arc<crate::dispatch::MirroredRun>,
}

impl RemoteRuns {
    /// Notes that the task's run is on a worker, mirrored through
    /// `mirrored`.
    pub(crate) fn hold(
        &self,
        task_id: &TaskId,
        run: Arc<crate::dispatch::RemoteRun>,
        mirrored: crate::dispatch::MirroredRun,
    ) {
        if let Ok(mut runs) = self.0.lock() {
            let mirrored = Arc::new(mirrored);
            runs.insert(task_id.clone(), HeldRemote { run, mirrored });
        }
    }

    /// The task's run on a worker, if it has one.
    pub(crate) fn get(&self, task_id: &TaskId) -> Option<Arc<crate::dispatch::RemoteRun>> {
        self.0
            .lock()
            .ok()
            .and_then(|runs| runs.get(task_id).map(|held| Arc::clone(&held.run)))
    }

    /// The runner the task's commands go through, when its run is on a
    /// worker.
    pub(crate) fn runner(&self, task_id: &TaskId) -> Option<Arc<dyn pushpals_sandbox::Runner>> {
        self.mirrored_run(task_id)
            .map(|mirrored| mirrored as Arc<dyn pushpals_sandbox::Runner>)
    }

    /// The task's mirrored run on a worker, if it has one.
    pub(crate) fn mirrored_run(
        &self,
        task_id: &TaskId,
    ) -> Option<Arc<crate::dispatch::MirroredRun>> {
        let runs = self.0.lock().ok()?;
        runs.get(task_id).map(|held| Arc::clone(&held.mirrored))
    }

    /// Forgets the task's run (the worker is freed when the last handle
    /// goes).
    pub(crate) fn end(&self, task_id: &TaskId) {
        if let Ok(mut runs) = self.0.lock() {
            runs.remove(task_id);
        }
    }
}

/// The cancel switches of tasks whose driver runs.
#[derive(Default)]
pub(crate) struct CancelSwitches(Mutex<HashMap<TaskId, watch::Sender<bool>>>);

impl CancelSwitches {
    /// A new switch for a task's driver; the driver watches the receiver.
    pub(crate) fn arm(&self, task_id: &TaskId) -> watch::Receiver<bool> {
        let (switch, cancel) = watch::channel(false);
        if let Ok(mut switches) = self.0.lock() {
            switches.insert(task_id.clone(), switch);
        }
        cancel
    }

    /// The driver ended: its switch goes.
    pub(crate) fn disarm(&self, task_id: &TaskId) {
        if let Ok(mut switches) = self.0.lock() {
            switches.remove(task_id);
        }
    }

    /// Tells the task's driver to stop; false when none runs.
    pub(crate) fn pull(&self, task_id: &TaskId) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|switches| switches.get(task_id).map(|s| s.send(true).is_ok()))
            .unwrap_or(false)
    }

    /// Whether the task's driver still runs (true when that cannot be
    /// told, so a caller waits rather than races it).
    pub(crate) fn is_running(&self, task_id: &TaskId) -> bool {
        self.0
            .lock()
            .map(|switches| switches.contains_key(task_id))
            .unwrap_or(true)
    }
}

/// Messages for agent tasks, taken at their next step.
#[derive(Default)]
pub(crate) struct Inboxes(Mutex<HashMap<TaskId, Vec<String>>>);

impl Inboxes {
    /// Leaves a message for the task.
    pub(crate) fn post(&self, task_id: &TaskId, message: String) {
        if let Ok(mut inboxes) = self.0.lock() {
            inboxes.entry(task_id.clone()).or_default().push(message);
        }
    }

    /// Everything left for the task since it last looked, oldest first.
    pub(crate) fn take(&self, task_id: &TaskId) -> Vec<String> {
        self.0
            .lock()
            .map(|mut inboxes| inboxes.remove(task_id).unwrap_or_default())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(n: u8) -> TaskId {
        TaskId::parse(&format!("task-{n}")).unwrap()
    }

    #[test]
    fn a_switch_reaches_only_its_driver_while_it_runs() {
        let switches = CancelSwitches::default();
        let cancel = switches.arm(&task(1));
        assert!(switches.is_running(&task(1)) && !switches.is_running(&task(2)));
        assert!(!switches.pull(&task(2)));
        assert!(switches.pull(&task(1)));
        assert!(*cancel.borrow());
        switches.disarm(&task(1));
        assert!(!switches.is_running(&task(1)) && !switches.pull(&task(1)));
    }

    #[test]
    fn messages_are_taken_once_in_order() {
        let inboxes = Inboxes::default();
        inboxes.post(&task(1), "first".into());
        inboxes.post(&task(1), "second".into());
        inboxes.post(&task(2), "other".into());
        assert_eq!(inboxes.take(&task(1)), ["first", "second"]);
        assert!(inboxes.take(&task(1)).is_empty());
        assert_eq!(inboxes.take(&task(2)), ["other"]);
    }
}
