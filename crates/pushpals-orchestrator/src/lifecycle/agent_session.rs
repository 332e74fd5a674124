//! An external agent's Agent Client Protocol session, as its run sees it:
//! a socket the sandbox helper connects to the agent's standard input and
//! output, the client serving it (the prompt's turn, then the inbox's), and
//! the end of the run once the session is over. An agent that keeps
//! running after its session ends (OpenHands does) is stopped after a
//! grace period (see [`crate::run_stop`]), and that stop is the run's
//! normal end, not a cancel.

use super::Lifecycle;
use super::driver::{StepResult, Stop};
use crate::run_stop::{RunStop, StopReason};
use pushpals_agent::Judge;
use pushpals_agent::external::{self, Step};
use pushpals_core::TaskId;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long an agent may go on after its session ended before it is
/// stopped.
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// A listening session socket; removed when dropped.
pub(crate) struct SessionSocket {
    pub(crate) path: PathBuf,
    listener: tokio::net::UnixListener,
}

impl Drop for SessionSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Lifecycle {
    /// A new session socket for the task's agent.
    pub(crate) fn session_socket(&self, task_id: &TaskId) -> StepResult<SessionSocket> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.worktrees_dir.with_file_name("sessions");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Stop::Failed(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(format!("{task_id}.sock"));
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)
            .map_err(|e| Stop::Failed(format!("cannot open {}: {e}", path.display())))?;
        Ok(SessionSocket { path, listener })
    }
}

/// What the session needs besides its socket.
pub(crate) struct SessionPlan {
    /// The worktree, the session's working directory.
    pub(crate) worktree: String,
    /// The first turn of a new session: the whole task.
    pub(crate) prompt: String,
    /// The task's last session and what came since, to load it and go on
    /// there where the agent can.
    pub(crate) resume: Option<(String, String)>,
    /// Answers the agent's permission requests.
    pub(crate) judge: Arc<dyn Judge>,
    /// Where the agent's steps go.
    pub(crate) steps: mpsc::UnboundedSender<Step>,
    /// Messages that came meanwhile, each sent as the next turn.
    pub(crate) more: Box<dyn Fn() -> Option<String> + Send + Sync>,
}

/// A session being served while the agent runs.
pub(crate) struct SessionRun {
    client: JoinHandle<()>,
}

impl SessionRun {
    /// Serves `socket` with `plan`; the agent is stopped [`GRACE`] after
    /// the session is over, if it has not exited by then.
    pub(crate) fn start(socket: SessionSocket, plan: SessionPlan, stop: &mut RunStop) -> Self {
        let (over, session_over) = oneshot::channel();
        let client = tokio::spawn(async move {
            serve(socket, plan).await;
            let _ = over.send(());
        });
        stop.stop_after(GRACE, async move {
            session_over.await.ok().map(|()| StopReason::SessionEnded)
        });
        Self { client }
    }

    /// Once the agent has exited: lets the client see the session's end
    /// (the agent ended it, or never began it), then ends it.
    pub(crate) async fn close(self) {
        let client = self.client;
        if tokio::time::timeout(Duration::from_secs(2), async {
            while !client.is_finished() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .is_err()
        {
            client.abort();
        }
    }
}

/// Waits for the agent to connect and runs its turns.
async fn serve(session: SessionSocket, plan: SessionPlan) {
    let result = match session.listener.accept().await {
        Ok((stream, _)) => {
            external::acp::run_session(
                stream,
                &plan.worktree,
                external::acp::Opening {
                    prompt: &plan.prompt,
                    resume: plan
                        .resume
                        .as_ref()
                        .map(|(session, turn)| (session.as_str(), turn.as_str())),
                },
                plan.judge.as_ref(),
                &plan.steps,
                plan.more.as_ref(),
            )
            .await
        }
        Err(error) => Err(format!("the agent's session did not open: {error}")),
    };
    if let Err(why) = result {
        let _ = plan.steps.send(Step::Finished {
            ok: false,
            summary: why,
            session: None,
            turns: None,
        });
    }
}
