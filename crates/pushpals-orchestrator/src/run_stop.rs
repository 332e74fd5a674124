//! What may end an external agent's run besides the agent itself: the
//! task's cancel, and conditions the run watches for (its session ended,
//! its budget was found spent at the gateway), each with a grace period in
//! which the agent may still exit on its own. The first to stop the agent
//! is remembered, so the run's end can say why.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why Push Pals stopped an agent that had not exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Its session was over and it went on running.
    SessionEnded,
    /// A call of its was refused because the task's budget is spent.
    BudgetSpent(String),
}

/// The stop signal of one run.
pub(crate) struct RunStop {
    stopper: Arc<watch::Sender<bool>>,
    /// Stops the agent's command.
    pub(crate) stop: watch::Receiver<bool>,
    reason: Arc<Mutex<Option<StopReason>>>,
    watchers: Vec<JoinHandle<()>>,
}

impl RunStop {
    /// A stop that follows the task's `cancel`.
    pub(crate) fn new(mut cancel: watch::Receiver<bool>) -> Self {
        let (stopper, stop) = watch::channel(*cancel.borrow());
        let stopper = Arc::new(stopper);
        let forward = {
            let stopper = Arc::clone(&stopper);
            tokio::spawn(async move {
                while cancel.changed().await.is_ok() {
                    if *cancel.borrow() {
                        let _ = stopper.send(true);
                        return;
                    }
                }
            })
        };
        Self {
            stopper,
            stop,
            reason: Arc::new(Mutex::new(None)),
            watchers: vec![forward],
        }
    }

    /// Stops the agent `grace` after `when` gives a reason (never, when it
    /// gives none).
    pub(crate) fn stop_after<F>(&mut self, grace: Duration, when: F)
    where
        F: Future<Output = Option<StopReason>> + Send + 'static,
    {
        let (stopper, reason) = (Arc::clone(&self.stopper), Arc::clone(&self.reason));
        self.watchers.push(tokio::spawn(async move {
            if let Some(why) = when.await {
                tokio::time::sleep(grace).await;
                if let Ok(mut reason) = reason.lock() {
                    reason.get_or_insert(why);
                }
                let _ = stopper.send(true);
            }
        }));
    }

    /// Why Push Pals stopped the agent, if it did.
    pub(crate) fn reason(&self) -> Option<StopReason> {
        self.reason.lock().ok()?.clone()
    }

    /// Ends the watching once the agent has exited.
    pub(crate) fn close(self) {
        for watcher in self.watchers {
            watcher.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_reason_stops_the_run_after_its_grace() {
        let (_cancel, cancelled) = watch::channel(false);
        let mut stop = RunStop::new(cancelled);
        let (spend, mut spent) = watch::channel(None::<String>);
        stop.stop_after(Duration::from_secs(2), async move {
            let why = spent.wait_for(Option::is_some).await.ok()?.clone()?;
            Some(StopReason::BudgetSpent(why))
        });
        stop.stop_after(Duration::from_secs(60), async {
            Some(StopReason::SessionEnded)
        });
        let mut signal = stop.stop.clone();
        tokio::time::sleep(Duration::from_secs(1)).await;
        spend.send_replace(Some("1 of 1 model calls".into()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!*signal.borrow(), "not before its grace");
        signal.changed().await.unwrap();
        assert!(*signal.borrow());
        assert_eq!(
            stop.reason(),
            Some(StopReason::BudgetSpent("1 of 1 model calls".into()))
        );
        stop.close();
    }

    #[tokio::test]
    async fn the_tasks_cancel_stops_it_without_a_reason() {
        let (cancel, cancelled) = watch::channel(false);
        let stop = RunStop::new(cancelled);
        let mut signal = stop.stop.clone();
        cancel.send_replace(true);
        signal.changed().await.unwrap();
        assert!(*signal.borrow());
        assert_eq!(
            stop.reason(),
            None,
            "a cancel is the person's, not Push Pals's"
        );
        stop.close();
    }
}
