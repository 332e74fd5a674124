//! Running an external agent CLI as a task's worker: in the task's
//! sandbox, with a private home, reaching its model only through the
//! gateway with a per-task token; its output stream becomes events, its
//! hooked tool calls are judged by the same policy as every command. The
//! gateway, versions, homes and sessions are the `ExternalAgents` part's.

use super::Lifecycle;
use super::agent_session::{SessionPlan, SessionRun};
use super::driver::{StepResult, Stop};
use crate::agent_steps::{StepRecorder, record_session_steps, record_steps};
use crate::output::{Tap, run_recorded};
use crate::run_stop::{RunStop, StopReason};
use pushpals_agent::external::{self, ExternalAgent, Setup};
use pushpals_agent::{Gateway, Issue, Judge};
use pushpals_core::payload::{AgentStarted, AgentStep};
use pushpals_core::{AgentWork, Task};
use pushpals_policy::Policy;
use pushpals_sandbox::CommandSpec;

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long an agent may go on after a call of its was refused for the
/// budget: long enough to show the refusal and exit on its own.
const BUDGET_GRACE: Duration = Duration::from_secs(3);

/// Longest text of one step kept in its event.
const STEP_TEXT: usize = 4096;

/// A gateway token that is revoked when dropped.
struct Revoked<'a> {
    gateway: &'a Gateway,
    token: pushpals_agent::GatewayToken,
}

impl Drop for Revoked<'_> {
    fn drop(&mut self) {
        self.gateway.revoke(&self.token);
    }
}

impl Lifecycle {
    /// Runs the external agent `name` on the task in its worktree.
    pub(crate) async fn run_external(
        self: &Arc<Self>,
        policy: &Policy,
        task: &Task,
        work: &AgentWork,
        name: &str,
        worktree: &str,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<()> {
        let configured = self
            .settings()
            .agents
            .get(name)
            .cloned()
            .unwrap_or_default();
        let adapter: Arc<dyn ExternalAgent> = Arc::from(
            external::adapter(name, configured.command.as_deref()).map_err(Stop::Failed)?,
        );
        // On a worker host the agent runs in the worker's sandbox, with the
        // program the worker found, reaching the gateway through the
        // worker's connection.
        let host = self.agent_host(&task.id, &task.repo, worktree, &adapter, &configured)?;
        let program = host.program.clone();
        let model_name = work
            .model
            .clone()
            .or(configured.model.clone())
            .unwrap_or_else(|| self.settings().agent.worker_model.clone());
        let model = Arc::new(
            crate::models::model_client(&self.settings(), Some(&model_name))
                .map_err(Stop::Failed)?,
        );
        // An agent of another protocol than its model's is translated at
        // the gateway (text and tool calls; streamed once complete).
        let translated =
            model.config().protocol != adapter.protocol() && configured.command.is_none();
        let home = self.agents.private_home(&task.id)?;
        let version = self
            .agents
            .version(
                task,
                adapter.as_ref(),
                &program,
                &home,
                &host.read_only,
                host.probe_runner(),
                cancel,
            )
            .await
            .map_err(|stop| match stop {
                Stop::Failed(reason) => self.failed_or_lost(&task.id, reason),
                stop => stop,
            })?;
        let handle = self.agents.gateway().await?;
        // On a worker the agent starts where its clone appears in the
        // sandbox, and writes there are judged as writes in the worktree.
        let judge: Arc<dyn Judge> = Arc::new(crate::judge::TaskJudge::new(
            Arc::clone(&self.gate),
            self.store.clone(),
            task.id.clone(),
            policy.clone(),
            &host.seen_at,
            cancel.clone(),
        ));
        let token = handle
            .gateway
            .issue(Issue {
                task: task.id.clone(),
                model: Arc::clone(&model),
                budget: self.settings().agent.budget.clone(),
                used: task.usage,
                judge: Some(Arc::clone(&judge)),
            })
            .map_err(Stop::Failed)?;
        // An agent that speaks the Agent Client Protocol gets a session
        // (the helper connects its standard input and output to it); its
        // permission requests go to the judge.
        // (Not on a worker: the session's file requests are this machine's.)
        let session = if adapter.speaks_acp()
            && self.runner.hook_command().is_some()
            && host.on_worker.is_none()
        {
            Some(self.session_socket(&task.id)?)
        } else {
            None
        };
        // Revoked however the run ends, early errors included.
        let token = Revoked {
            gateway: &handle.gateway,
            token,
        };
        let resume = match &host.on_worker {
            Some(_) => None,
            None => self.agents.last_session(&task.id).await?,
        };
        let said: Vec<String> = self.inboxes.take(&task.id);
        // The whole task, for a new session; what came since, for the
        // agent's own session when it resumes one.
        let (whole, since) = if said.is_empty() {
            (work.prompt.clone(), work.prompt.clone())
        } else {
            let since = said.join("\n\n");
            (format!("{}\n\n{since}", work.prompt), since)
        };
        // A session-protocol agent loads its session through the session
        // (and falls back to a new one, told the whole task); others are
        // started on their session.
        let prompt = match (&resume, &session) {
            (Some(_), None) => since.clone(),
            _ => whole,
        };
        let hook = self
            .runner
            .hook_command()
            .map(|line| format!("{line} {}", external::claude_code::HOOK_PATH));
        let sandbox_home = pushpals_sandbox::SANDBOX_HOME;
        let home_path = home.clone();
        let launch = adapter
            .prepare(&Setup {
                home: &home,
                sandbox_home,
                gateway_url: pushpals_sandbox::GATEWAY_URL,
                token: token.token.secret(),
                model: &model.config().model,
                program: &program,
                prompt: &prompt,
                hook: hook.as_deref(),
                resume: resume.as_deref(),
                acp: session.is_some(),
            })
            .map_err(Stop::Failed)?;
        let started = AgentStarted {
            agent: name.to_owned(),
            version: version.clone(),
            program: program.display().to_string(),
            model: model_name.clone(),
            protocol: adapter.protocol().as_str().to_owned(),
            translated_to: translated.then(|| model.config().protocol.as_str().to_owned()),
            resumed_session: resume.clone(),
            judged_by_hook: hook.is_some() && name == "claude-code",
            session_protocol: session.as_ref().map(|_| "acp".to_owned()),
            worker: host.on_worker.as_ref().map(|(_, worker)| worker.clone()),
        };
        self.agents.record(&task.id, &started).await?;
        let mut env = launch.env;
        env.push(("PUSHPALS_TASK".into(), task.id.to_string()));
        let spec = CommandSpec {
            command_line: launch.command_line,
            cwd: worktree.into(),
            timeout: wall_time(self.settings().agent.budget.max_minutes),
            env,
            read_only_paths: host.read_only.clone(),
            network_proxy: None,
            gateway: Some(handle.server.socket().to_path_buf()),
            home: Some(home.clone()),
            session: session.as_ref().map(|s| s.path.clone()),
            alias: host.alias.clone(),
        };
        if let Some(file) = adapter.trajectory() {
            // A record left by an earlier run must not pass for this one's.
            let _ = std::fs::remove_file(home_path.join(file));
        }
        let recorder = StepRecorder::new(
            self.store.clone(),
            self.scanner(),
            task.id.clone(),
            STEP_TEXT,
        );
        let (tap, chunks) = mpsc::unbounded_channel();
        // Besides the task's cancel, the agent is stopped when a call of its
        // was refused for the budget and it has not exited a little later
        // (some retry a refusal for minutes).
        let mut run_stop = RunStop::new(cancel.clone());
        if let Some(mut spent) = handle.gateway.spent(&token.token) {
            run_stop.stop_after(BUDGET_GRACE, async move {
                let why = spent.wait_for(Option::is_some).await.ok()?.clone()?;
                Some(StopReason::BudgetSpent(why))
            });
        }
        let (steps, session_run) = match session {
            None => (
                tokio::spawn(record_steps(recorder, Arc::clone(&adapter), chunks)),
                None,
            ),
            Some(session) => {
                let (sent, received) = mpsc::unbounded_channel();
                let orchestrator = Arc::clone(self);
                let task_id = task.id.clone();
                let more = move || {
                    let said = orchestrator.inboxes.take(&task_id);
                    (!said.is_empty()).then(|| said.join("\n\n"))
                };
                let run = SessionRun::start(
                    session,
                    SessionPlan {
                        worktree: worktree.to_owned(),
                        prompt: prompt.clone(),
                        resume: resume.clone().map(|earlier| (earlier, since.clone())),
                        judge: Arc::clone(&judge),
                        steps: sent,
                        more: Box::new(more),
                    },
                    &mut run_stop,
                );
                (
                    tokio::spawn(record_session_steps(recorder, received)),
                    Some(run),
                )
            }
        };
        let recorded = run_recorded(
            &self.store,
            host.runner.as_ref(),
            &self.scanner(),
            &task.id,
            "agent",
            spec,
            run_stop.stop.clone(),
            Some(Tap(tap)),
        )
        .await;
        drop(token);
        // Why Push Pals stopped the agent, unless the task was cancelled.
        let stopped = run_stop.reason().filter(|_| !*cancel.borrow());
        run_stop.close();
        if let Some(run) = session_run {
            run.close().await;
        }
        let mut recorder = steps
            .await
            .map_err(|e| Stop::Failed(format!("reading {name}'s output failed: {e}")))?;
        if let Some(text) = host.trajectory(&home_path, adapter.trajectory()) {
            for step in adapter.parse_trajectory(&text) {
                recorder.record(step).await;
            }
        }
        let finished = recorder.finished;
        let recorded =
            recorded?.map_err(|e| self.failed_or_lost(&task.id, format!("{name}: {e}")))?;
        let stopped_after_its_end = stopped == Some(StopReason::SessionEnded);
        match &stopped {
            Some(StopReason::SessionEnded) => {
                let stopped = AgentStep {
                    reason: Some(format!(
                        "{name} did not exit within {} s of the end of its session; Push Pals stopped it",
                        super::agent_session::GRACE.as_secs()
                    )),
                    ..AgentStep::named("stopped")
                };
                self.agents.record(&task.id, &stopped).await?;
            }
            Some(StopReason::BudgetSpent(why)) => {
                let reason = format!(
                    "{name} did not exit within {} s of its call refused for the budget; Push Pals stopped it: {why}",
                    BUDGET_GRACE.as_secs()
                );
                let stopped = AgentStep {
                    reason: Some(reason.clone()),
                    ..AgentStep::named("stopped")
                };
                self.agents.record(&task.id, &stopped).await?;
                return Err(Stop::Failed(reason));
            }
            None if recorded.outcome.cancelled => return Err(Stop::Superseded),
            None => {}
        }
        let ok_by_agent = finished.as_ref().is_none_or(|(ok, _)| *ok);
        if (recorded.outcome.succeeded() || stopped_after_its_end) && ok_by_agent {
            return Ok(());
        }
        let mut reason = match finished {
            Some((false, summary)) if !summary.trim().is_empty() => {
                format!("{name} failed: {summary}")
            }
            _ => format!("{name} {}", recorded.outcome.describe()),
        };
        if !recorded.tail.is_empty() {
            reason.push_str("; last output:\n");
            reason.push_str(&recorded.tail);
        }
        Err(Stop::Failed(reason))
    }
}

/// A budget's wall time as a command time limit (at least a minute).
fn wall_time(minutes: f64) -> Duration {
    let seconds = minutes * 60.0;
    if seconds.is_finite() && seconds >= 60.0 {
        Duration::from_secs_f64(seconds.min(1e9))
    } else {
        Duration::from_secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budgets_wall_time_is_at_least_a_minute() {
        assert_eq!(wall_time(0.5), Duration::from_secs(60));
        assert_eq!(wall_time(2.0), Duration::from_secs(120));
    }
}
