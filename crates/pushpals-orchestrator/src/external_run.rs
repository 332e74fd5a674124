//! Running an external agent CLI as a task's worker: in the task's
//! sandbox, with a private home, reaching its model only through the
//! gateway with a per-task token; its output stream becomes events, its
//! hooked tool calls are judged by the same policy as every command.
//!
//! Over 400 lines: running one external agent is one ordered sequence (model, home, gateway
//! token, session, version, stop).

use crate::agent_session::{SessionPlan, SessionRun};
use crate::agent_steps::{StepRecorder, record_session_steps, record_steps};
use crate::driver::{StepResult, Stop};
use crate::orchestrator::Orchestrator;
use crate::output::{Tap, run_recorded};
use crate::run_stop::{RunStop, StopReason};
use pushpals_agent::external::{self, ExternalAgent, Setup};
use pushpals_agent::{Gateway, GatewayCall, GatewayServer, Issue, Judge};
use pushpals_core::payload::{AgentStarted, AgentStep, EventPayload, PolicyDecision};
use pushpals_core::{Actor, AgentWork, NewEvent, Task, TaskId};
use pushpals_policy::Policy;
use pushpals_sandbox::CommandSpec;
use pushpals_store::EventQuery;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long an agent may go on after a call of its was refused for the
/// budget: long enough to show the refusal and exit on its own.
const BUDGET_GRACE: Duration = Duration::from_secs(3);

/// How long `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

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

/// The gateway, served once per orchestrator.
pub(crate) struct GatewayHandle {
    pub gateway: Arc<Gateway>,
    pub server: GatewayServer,
}

impl Orchestrator {
    /// The model gateway, started on first use; its calls become
    /// `model_call` events of their tasks.
    pub(crate) async fn gateway(&self) -> StepResult<&GatewayHandle> {
        self.gateway
            .get_or_try_init(|| async {
                let socket = self.worktrees_dir.with_file_name("gateway.sock");
                let (gateway, calls) = Gateway::new();
                let server = gateway.serve(&socket).map_err(|e| {
                    Stop::Failed(format!(
                        "cannot serve the model gateway on {}: {e}",
                        socket.display()
                    ))
                })?;
                tokio::spawn(record_calls(self.store.clone(), self.scanner(), calls));
                Ok(GatewayHandle { gateway, server })
            })
            .await
    }

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
        if !self.runner.isolated() {
            return Err(Stop::Failed(format!(
                "{name} runs in its auto-approve mode, so it runs only inside the sandbox, and sandbox = \"none\" has none; use the bubblewrap backend"
            )));
        }
        let search: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect())
            .unwrap_or_default();
        let program =
            external::find_program(adapter.as_ref(), configured.program.as_deref(), &search)
                .map_err(Stop::Failed)?;
        let model_name = work
            .model
            .clone()
            .or(configured.model.clone())
            .unwrap_or_else(|| self.settings().agent.worker_model.clone());
        let model = Arc::new(self.model_client(Some(&model_name)).map_err(Stop::Failed)?);
        // An agent of another protocol than its model's is translated at
        // the gateway (text and tool calls; streamed once complete).
        let translated =
            model.config().protocol != adapter.protocol() && configured.command.is_none();
        let home = self.private_home(&task.id)?;
        let install_root = external::install_root(&program);
        // A venv's interpreter lives where its pyvenv.cfg says: visible too.
        let served = self.served(&task.repo)?;
        let read_only: Vec<PathBuf> = served
            .repo
            .git_common_dir()
            .into_iter()
            .chain(external::venv_base_prefix(&install_root))
            .chain(std::iter::once(install_root))
            .collect();
        let version = self
            .agent_version(task, adapter.as_ref(), &program, &home, &read_only, cancel)
            .await?;
        let handle = self.gateway().await?;
        let judge: Arc<dyn Judge> = Arc::new(crate::judge::TaskJudge::new(
            Arc::clone(self),
            task.id.clone(),
            policy.clone(),
            worktree,
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
        let session = if adapter.speaks_acp() && self.runner.hook_command().is_some() {
            Some(self.session_socket(&task.id)?)
        } else {
            None
        };
        // Revoked however the run ends, early errors included.
        let token = Revoked {
            gateway: &handle.gateway,
            token,
        };
        let resume = self.last_session(&task.id).await?;
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
        };
        self.record(&task.id, &started).await?;
        let mut env = launch.env;
        env.push(("PUSHPALS_TASK".into(), task.id.to_string()));
        let spec = CommandSpec {
            command_line: launch.command_line,
            cwd: worktree.into(),
            timeout: wall_time(self.settings().agent.budget.max_minutes),
            env,
            read_only_paths: read_only,
            network_proxy: None,
            gateway: Some(handle.server.socket().to_path_buf()),
            home: Some(home.clone()),
            session: session.as_ref().map(|s| s.path.clone()),
            alias: None,
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
            self.runner.as_ref(),
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
        if let Some(file) = adapter.trajectory()
            && let Ok(text) = std::fs::read_to_string(home_path.join(file))
        {
            for step in adapter.parse_trajectory(&text) {
                recorder.record(step).await;
            }
        }
        let finished = recorder.finished;
        let recorded = recorded?.map_err(|e| Stop::Failed(format!("{name}: {e}")))?;
        let stopped_after_its_end = stopped == Some(StopReason::SessionEnded);
        match &stopped {
            Some(StopReason::SessionEnded) => {
                let stopped = AgentStep {
                    reason: Some(format!(
                        "{name} did not exit within {} s of the end of its session; Push Pals stopped it",
                        crate::agent_session::GRACE.as_secs()
                    )),
                    ..AgentStep::named("stopped")
                };
                self.record(&task.id, &stopped).await?;
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
                self.record(&task.id, &stopped).await?;
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

    /// The task's private home for its agent, made on first use.
    fn private_home(&self, task_id: &TaskId) -> StepResult<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        let home = self
            .worktrees_dir
            .with_file_name("homes")
            .join(task_id.as_str());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&home)
            .map_err(|e| Stop::Failed(format!("cannot create {}: {e}", home.display())))?;
        Ok(home)
    }

    /// The agent's version, asked inside the sandbox (once per program
    /// until it changes).
    async fn agent_version(
        &self,
        task: &Task,
        adapter: &dyn ExternalAgent,
        program: &Path,
        home: &Path,
        read_only: &[PathBuf],
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<Option<String>> {
        if adapter.version_args().is_empty() {
            return Ok(None);
        }
        let modified = std::fs::metadata(program).and_then(|m| m.modified()).ok();
        if let Some(version) = self.agent_versions.known(program, modified) {
            return Ok(version);
        }
        let mut line = external::shell_quote(&program.to_string_lossy());
        for arg in adapter.version_args() {
            line.push(' ');
            line.push_str(&external::shell_quote(arg));
        }
        let spec = CommandSpec {
            command_line: line,
            cwd: task.worktree_path.clone().unwrap_or_default().into(),
            timeout: VERSION_TIMEOUT,
            env: Vec::new(),
            read_only_paths: read_only.to_vec(),
            network_proxy: None,
            gateway: None,
            home: Some(home.to_path_buf()),
            session: None,
            alias: None,
        };
        // The version is read from standard output first: some agents
        // print warnings on the other stream that look like versions.
        let (tap, mut chunks) = mpsc::unbounded_channel();
        let recorded = run_recorded(
            &self.store,
            self.runner.as_ref(),
            &self.scanner(),
            &task.id,
            "agent:version",
            spec,
            cancel.clone(),
            Some(Tap(tap)),
        )
        .await?
        .map_err(|e| Stop::Failed(format!("{}: {e}", adapter.name())))?;
        if recorded.outcome.cancelled {
            return Err(Stop::Superseded);
        }
        if !recorded.outcome.succeeded() {
            return Err(Stop::Failed(format!(
                "{} is at {} but `{}` {} in the sandbox: {}; reinstall it with `{}`",
                adapter.name(),
                program.display(),
                adapter.version_args().join(" "),
                recorded.outcome.describe(),
                recorded.tail,
                adapter.install_hint()
            )));
        }
        let mut stdout = Vec::new();
        while let Ok(chunk) = chunks.try_recv() {
            if chunk.stream == pushpals_sandbox::OutputStream::Stdout {
                stdout.extend_from_slice(&chunk.bytes);
            }
        }
        let version = version_line(&String::from_utf8_lossy(&stdout))
            .or_else(|| version_line(&recorded.output));
        self.agent_versions
            .remember(program, modified, version.clone());
        Ok(version)
    }

    /// The agent session the task's last run ended in, for resuming.
    async fn last_session(&self, task_id: &TaskId) -> StepResult<Option<String>> {
        let mut after = 0;
        let mut session = None;
        loop {
            let page = self
                .store
                .events(EventQuery {
                    after,
                    task_id: Some(task_id.clone()),
                    limit: Some(1000),
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for event in &page {
                if let Some(id) = event
                    .read::<pushpals_core::payload::AgentFinished>()
                    .and_then(|finished| finished.session)
                {
                    session = Some(id);
                }
            }
        }
        Ok(session)
    }

    async fn record<T: EventPayload>(&self, task_id: &TaskId, payload: &T) -> StepResult<()> {
        let event = NewEvent::typed(Some(task_id), Actor::Worker(task_id.clone()), payload)
            .map_err(|e| Stop::Failed(format!("cannot encode an event: {e}")))?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(())
    }
}

/// The line of `--version` output that names a version (`1.2`), past any
/// warnings the program prints first.
fn version_line(output: &str) -> Option<String> {
    output
        .lines()
        .find(|line| {
            line.as_bytes()
                .windows(3)
                .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
        })
        .map(|line| line.trim().to_owned())
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

/// Writes the gateway's calls as `model_call` events, bodies in blobs
/// (redacted), and adds their usage to their tasks; a call it refused is a
/// `policy_decision` (deny, with the reason).
async fn record_calls(
    store: pushpals_store::Store,
    scanner: pushpals_workspace::SecretScanner,
    mut calls: mpsc::UnboundedReceiver<GatewayCall>,
) {
    while let Some(call) = calls.recv().await {
        if let Some(why) = call.refused {
            let refusal = PolicyDecision {
                step: "gateway".into(),
                decision: Some("deny".into()),
                reason: Some(why),
                protocol: call.detail.protocol.clone(),
                ..PolicyDecision::default()
            };
            let task = call.task.clone();
            if let Err(error) = store
                .write(move |tx| {
                    tx.append(NewEvent::typed(Some(&task), Actor::Orchestrator, &refusal)?)
                })
                .await
            {
                tracing::error!(%error, "cannot record a refusal of the gateway");
            }
            continue;
        }
        let request = scanner
            .redact(&String::from_utf8_lossy(&call.request))
            .into_owned()
            .into_bytes();
        let response = scanner
            .redact(&String::from_utf8_lossy(&call.response))
            .into_owned()
            .into_bytes();
        let GatewayCall {
            task,
            mut detail,
            usage,
            ..
        } = call;
        let written = store
            .write(move |tx| {
                detail.request_blob = Some(tx.put_blob(&request)?);
                if !response.is_empty() {
                    detail.response_blob = Some(tx.put_blob(&response)?);
                }
                tx.append(NewEvent::typed(
                    Some(&task),
                    Actor::Worker(task.clone()),
                    &detail,
                )?)?;
                tx.add_usage(&task, usage)
            })
            .await;
        if let Err(error) = written {
            tracing::error!(%error, "cannot record a model call of the gateway");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_is_the_one_with_a_version() {
        let output = "WARNING: could not create \"/tmp\" aliases\ncodex-cli 0.169.0\n";
        assert_eq!(version_line(output).as_deref(), Some("codex-cli 0.169.0"));
        assert_eq!(version_line("no version here\n"), None);
        assert_eq!(wall_time(0.5), Duration::from_secs(60));
        assert_eq!(wall_time(2.0), Duration::from_secs(120));
    }
}
