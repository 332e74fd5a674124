//! Network for a command that policy lets have it: a proxy per command,
//! its decisions recorded as events of the task.

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use pushpals_core::payload::{NetworkAllowed, NetworkReach, NetworkRefused};
use pushpals_core::{Actor, NewEvent, TaskId};
use pushpals_sandbox::{Allowlist, NetworkEvent, Proxy};

/// Makes proxy socket names unique.
static PROXY_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Lifecycle {
    /// Starts the network proxy for one command of a task; what it lets
    /// through and refuses becomes events of the task.
    pub(crate) fn start_proxy(&self, task_id: &TaskId) -> StepResult<Proxy> {
        let allowlist = Allowlist::new(&self.settings().network.allow).map_err(Stop::Failed)?;
        self.start_proxy_with(task_id, allowlist)
    }

    /// The same with hosts of its own (a setup step's registries).
    pub(crate) fn start_proxy_with(
        &self,
        task_id: &TaskId,
        allowlist: Allowlist,
    ) -> StepResult<Proxy> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.worktrees_dir.with_file_name("proxy");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Stop::Failed(format!("cannot create {}: {e}", dir.display())))?;
        let n = PROXY_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = dir.join(format!("{task_id}-{n}.sock"));
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let proxy = Proxy::start(&socket, allowlist, sender)
            .map_err(|e| Stop::Failed(format!("cannot start the network proxy: {e}")))?;
        let store = self.store.clone();
        let task = task_id.clone();
        tokio::spawn(async move {
            while let Some(network_event) = receiver.recv().await {
                let event = match network_event {
                    NetworkEvent::Allowed { host, port } => NewEvent::typed(
                        Some(&task),
                        Actor::Orchestrator,
                        &NetworkAllowed(NetworkReach {
                            host,
                            port,
                            reason: None,
                        }),
                    ),
                    NetworkEvent::Refused { host, port, reason } => NewEvent::typed(
                        Some(&task),
                        Actor::Orchestrator,
                        &NetworkRefused(NetworkReach {
                            host,
                            port,
                            reason: Some(reason),
                        }),
                    ),
                };
                let Ok(event) = event else { break };
                if store.write(move |tx| tx.append(event)).await.is_err() {
                    break;
                }
            }
        });
        Ok(proxy)
    }
}
