//! External agents' own state, a part of the orchestrator: the model
//! gateway they reach their models through (started on first use; its
//! calls become `model_call` events), their versions (asked once per build
//! of a program), their private homes, and the sessions their runs ended
//! in. Running one is the orchestrator's (`external_run`): it needs the
//! task's sandbox and command gate.

use crate::agent_versions::AgentVersions;
use crate::current::Current;
use crate::lifecycle::{StepResult, Stop};
use crate::output::{Tap, run_recorded};
use pushpals_agent::external::{self, ExternalAgent};
use pushpals_agent::{Gateway, GatewayCall, GatewayServer};
use pushpals_core::payload::{AgentFinished, AgentStarted, EventPayload, PolicyDecision};
use pushpals_core::{Actor, NewEvent, Task, TaskId};
use pushpals_sandbox::{CommandSpec, Runner};
use pushpals_store::Store;
use pushpals_workspace::SecretScanner;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

/// The gateway, served once per orchestrator.
pub(crate) struct GatewayHandle {
    pub gateway: Arc<Gateway>,
    pub server: GatewayServer,
}

/// See the module's documentation.
pub(crate) struct ExternalAgents {
    store: Store,
    runner: Arc<dyn Runner>,
    secrets: Arc<Current<SecretScanner>>,
    /// The data directory: the gateway's socket and the agents' homes.
    data_dir: PathBuf,
    gateway: tokio::sync::OnceCell<GatewayHandle>,
    versions: AgentVersions,
}

impl ExternalAgents {
    /// External agents' state over these handles.
    pub(crate) fn new(
        store: Store,
        runner: Arc<dyn Runner>,
        secrets: Arc<Current<SecretScanner>>,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            store,
            runner,
            secrets,
            data_dir,
            gateway: tokio::sync::OnceCell::new(),
            versions: AgentVersions::default(),
        }
    }

    /// The model gateway, started on first use; its calls become
    /// `model_call` events of their tasks.
    pub(crate) async fn gateway(&self) -> StepResult<&GatewayHandle> {
        self.gateway
            .get_or_try_init(|| async {
                let socket = self.data_dir.join("gateway.sock");
                let (gateway, calls) = Gateway::new();
                let server = gateway.serve(&socket).map_err(|e| {
                    Stop::Failed(format!(
                        "cannot serve the model gateway on {}: {e}",
                        socket.display()
                    ))
                })?;
                tokio::spawn(record_calls(
                    self.store.clone(),
                    self.secrets.get().as_ref().clone(),
                    calls,
                ));
                Ok(GatewayHandle { gateway, server })
            })
            .await
    }

    /// The task's private home for its agent, made on first use.
    pub(crate) fn private_home(&self, task_id: &TaskId) -> StepResult<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        let home = self.data_dir.join("homes").join(task_id.as_str());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&home)
            .map_err(|e| Stop::Failed(format!("cannot create {}: {e}", home.display())))?;
        Ok(home)
    }

    /// The agent's version, asked inside the sandbox (once per program
    /// until it changes); on a worker host (`on_worker`, its runner), asked
    /// there each run.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn version(
        &self,
        task: &Task,
        adapter: &dyn ExternalAgent,
        program: &Path,
        home: &Path,
        read_only: &[PathBuf],
        on_worker: Option<&dyn pushpals_sandbox::Runner>,
        cancel: &watch::Receiver<bool>,
    ) -> StepResult<Option<String>> {
        if adapter.version_args().is_empty() {
            return Ok(None);
        }
        let modified = match on_worker {
            Some(_) => None,
            None => std::fs::metadata(program).and_then(|m| m.modified()).ok(),
        };
        if on_worker.is_none()
            && let Some(version) = self.versions.known(program, modified)
        {
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
            on_worker.unwrap_or(self.runner.as_ref()),
            &self.secrets.get(),
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
        if on_worker.is_none() {
            self.versions.remember(program, modified, version.clone());
        }
        Ok(version)
    }

    /// The agent's session to resume: the last one it said, unless that
    /// run was on a worker host (its session went with the worker's home).
    pub(crate) async fn last_session(&self, task_id: &TaskId) -> StepResult<Option<String>> {
        let events = self.store.task_events(task_id).await?;
        let Some((at, session)) = events
            .iter()
            .enumerate()
            .rev()
            .find_map(|(at, event)| Some((at, event.read::<AgentFinished>()?.session?)))
        else {
            return Ok(None);
        };
        let on_worker = events[..at]
            .iter()
            .rev()
            .find_map(|event| event.read::<AgentStarted>())
            .is_some_and(|started| started.worker.is_some());
        Ok((!on_worker).then_some(session))
    }

    pub(crate) async fn record<T: EventPayload>(
        &self,
        task_id: &TaskId,
        payload: &T,
    ) -> StepResult<()> {
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
    }
}
