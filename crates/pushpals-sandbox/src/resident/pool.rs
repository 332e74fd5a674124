//! The resident sandboxes of one runner: found by what they bind, started
//! when missing or stale, forgotten when found gone, released with their
//! worktree, and ended after a while unused.

use super::Resident;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Mutex;

/// A resident sandbox unused this long is ended.
pub(crate) const IDLE_LIMIT: Duration = Duration::from_secs(300);

/// How often idle sandboxes are looked for.
const IDLE_SWEEP: Duration = Duration::from_secs(30);

/// What a resident sandbox binds: commands whose specs agree on these can
/// share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ResidentKey {
    /// The worktree, bound writable.
    pub worktree: PathBuf,
    /// Extra read-only paths.
    pub read_only: Vec<PathBuf>,
    /// The private home, bound writable.
    pub home: Option<PathBuf>,
    /// The worktree's stable path.
    pub alias: Option<PathBuf>,
}

/// The resident sandboxes of one runner.
#[derive(Debug, Default)]
pub(crate) struct Residents {
    running: Mutex<HashMap<ResidentKey, Arc<Resident>>>,
    /// Set when a sandbox could not start: from then on commands start in
    /// fresh sandboxes, as before.
    broken: AtomicBool,
    sweeping: AtomicBool,
}

impl Residents {
    /// False once starting one has failed.
    pub(crate) fn usable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
    }

    /// The sandbox for `key`, started by `start` when there is none, it
    /// ended, or the worktree is no longer the directory it bound. `None`
    /// (and no further tries) when starting fails.
    pub(crate) async fn get(
        self: &Arc<Self>,
        key: ResidentKey,
        start: impl Future<Output = io::Result<Resident>>,
    ) -> Option<Arc<Resident>> {
        let mut running = self.running.lock().await;
        if let Some(resident) = running.get(&key) {
            if resident.current(&key.worktree) {
                resident.touch();
                return Some(Arc::clone(resident));
            }
            running.remove(&key);
        }
        match start.await {
            Ok(resident) => {
                let resident = Arc::new(resident);
                running.insert(key, Arc::clone(&resident));
                drop(running);
                self.sweep_idle_ones();
                Some(resident)
            }
            Err(error) => {
                self.broken.store(true, Ordering::Relaxed);
                tracing::warn!(
                    %error,
                    "a task's resident sandbox could not start; every command now starts in a fresh sandbox"
                );
                None
            }
        }
    }

    /// Forgets `resident` (found ended), so the next command starts anew.
    pub(crate) async fn forget(&self, resident: &Arc<Resident>) {
        self.running
            .lock()
            .await
            .retain(|_, kept| !Arc::ptr_eq(kept, resident));
    }

    /// Ends the sandboxes bound to `worktree` (once their running commands
    /// end).
    pub(crate) async fn release(&self, worktree: &Path) {
        self.running
            .lock()
            .await
            .retain(|key, _| key.worktree != worktree);
    }

    /// Starts, once, the sweep that ends sandboxes idle for [`IDLE_LIMIT`].
    fn sweep_idle_ones(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let residents: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE_SWEEP).await;
                let Some(residents) = residents.upgrade() else {
                    return;
                };
                residents.running.lock().await.retain(|_, resident| {
                    Arc::strong_count(resident) > 1 || resident.idle() < IDLE_LIMIT
                });
            }
        });
    }
}
