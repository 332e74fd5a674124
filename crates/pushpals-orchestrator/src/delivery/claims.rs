//! One delivery action (push, pull request, merge) per task at a time: a
//! claim held while the action runs; a second one for the same task is
//! refused at once instead of racing the first over the same worktree,
//! branch and forge.

use pushpals_core::TaskId;
use std::collections::HashSet;
use std::sync::Mutex;

/// The tasks with a delivery action under way.
#[derive(Debug, Default)]
pub(crate) struct DeliveryClaims {
    held: Mutex<HashSet<TaskId>>,
}

/// A held claim; released when dropped, whatever the action's outcome.
#[derive(Debug)]
pub(crate) struct DeliveryClaim<'a> {
    claims: &'a DeliveryClaims,
    task: TaskId,
}

impl DeliveryClaims {
    /// Claims `task`, or `None` when a delivery action holds it.
    pub(crate) fn try_claim(&self, task: &TaskId) -> Option<DeliveryClaim<'_>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(task.clone()).then(|| DeliveryClaim {
            claims: self,
            task: task.clone(),
        })
    }
}

impl Drop for DeliveryClaim<'_> {
    fn drop(&mut self) {
        let mut held = self.claims.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.task);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_claimed_once_until_released() {
        let claims = DeliveryClaims::default();
        let task = TaskId::parse("t1").unwrap();
        let first = claims.try_claim(&task);
        assert!(first.is_some());
        assert!(claims.try_claim(&task).is_none());
        assert!(claims.try_claim(&TaskId::parse("t2").unwrap()).is_some());
        drop(first);
        assert!(claims.try_claim(&task).is_some());
    }
}
