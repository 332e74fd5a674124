//! The orchestrator's state and the requests it takes.
//!
//! Over 400 lines: the struct that wires the parts together (each owns its
//! state), its start-up recovery, and the requests every client makes
//! (create, cancel, diff); per-repository parts come with many repositories.

use crate::error::{OrchestratorError, OrchestratorResult};
use crate::settings::Settings;
use pushpals_core::payload::PolicyDecision;
use pushpals_core::{Actor, AgentWork, NewEvent, Task, TaskId, TaskState};
use pushpals_policy::Policy;
use pushpals_sandbox::Runner;
use pushpals_store::{Store, StoreError, TaskUpdate};
use pushpals_workspace::{Diff, Repo, SecretScanner};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A request for new work.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// What to do, in a line; becomes the commit subject.
    pub title: String,
    /// The command line the command worker runs (a command task).
    pub command: Option<String>,
    /// The brief the built-in agent works from (an agent task); give this
    /// or `command`, not both.
    pub agent: Option<AgentWork>,
    /// The creator approves the command in the same gesture, should policy
    /// ask about it (a deny still denies). Needs the approve scope.
    pub approve_command: bool,
    /// The repository it works in; may be left out when the server has
    /// only one.
    pub repo: Option<String>,
}

/// A task's diff against its base commit.
#[derive(Debug, Clone)]
pub struct TaskDiff {
    /// The task.
    pub task_id: TaskId,
    /// The commit it started from.
    pub base_commit: String,
    /// Its branch.
    pub branch: String,
    /// The changes, with secrets redacted.
    pub diff: Diff,
    /// Possible secrets in the changes (masked).
    pub secret_findings: Vec<pushpals_workspace::SecretFinding>,
    /// The message an approved commit would get.
    pub commit_message: String,
    /// The text a pull request of it would get.
    pub pr_text: String,
}

/// Longest accepted title, in bytes.
const MAX_TITLE: usize = 500;
/// Longest accepted command line, in bytes.
const MAX_COMMAND: usize = 64 * 1024;

/// Takes tasks from creation to an approved commit. Shared as
/// `Arc<Orchestrator>`. It wires parts together and holds no lock of its
/// own: each field that changes while serving is a part owning its state
/// (the command gate, cancel switches, inboxes, the planner, the scanner, the
/// sandbox probe, agent versions, base fetches, delivery, warm
/// caches).
pub struct Orchestrator {
    pub(crate) store: Store,
    /// The served repositories, each with its checkout, caches and fetches.
    pub(crate) repos: Arc<crate::repositories::Repositories>,
    pub(crate) data_dir: PathBuf,
    pub(crate) runner: Arc<dyn Runner>,
    /// The settings in force; replaced whole by a reload (`settings()`).
    pub(crate) settings: Arc<crate::current::Current<Settings>>,
    pub(crate) worktrees_dir: PathBuf,
    /// `max_parallel`, shared fairly by the repositories.
    pub(crate) slots: crate::fair_slots::FairSlots,
    /// Cancel switches of tasks that have a driver running.
    pub(crate) cancels: crate::running_tasks::CancelSwitches,
    /// The command policy in force, grants for a task, and the drivers
    /// waiting on a command approval.
    pub(crate) gate: Arc<crate::command_gate::CommandGate>,
    /// Finds and redacts secrets in output and diffs.
    pub(crate) secrets: Arc<crate::current::Current<SecretScanner>>,
    /// Messages for agent tasks, taken at their next step.
    pub(crate) inboxes: crate::running_tasks::Inboxes,
    /// The planner, with the plans it is making or holding for an OK.
    pub(crate) planner: crate::chat::Planner,
    /// The proactive scanner, with its turns and schedule.
    pub(crate) scanner: Arc<crate::scan::Scanner>,
    /// The last sandbox probe of `/readyz`, reused for a while.
    pub(crate) sandbox_probe: crate::readiness::SandboxProbe,
    /// External agents' gateway, versions, homes and sessions.
    pub(crate) agents: crate::external_agents::ExternalAgents,
    /// Pushes, pull requests and merges, each after its approval.
    pub(crate) delivery: crate::delivery::Delivery,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("repos", &self.repos.all())
            .field("backend", &self.runner.backend())
            .finish()
    }
}

impl Orchestrator {
    /// Starts the orchestrator: opens the registered repositories (and
    /// registers `repo`, a local checkout, when given and new), marks tasks
    /// that were live when the last one stopped as interrupted (keeping
    /// their worktrees and branches) and starts the queued ones.
    pub async fn start(
        store: Store,
        repo: Option<Repo>,
        runner: Arc<dyn Runner>,
        settings: Settings,
        policy: Policy,
        data_dir: &Path,
    ) -> OrchestratorResult<Arc<Self>> {
        let max_parallel = settings.max_parallel();
        let secrets = SecretScanner::builtin()
            .map_err(|e| OrchestratorError::Internal(format!("the built-in secret rules: {e}")))?;
        let repos = Arc::new(crate::repositories::Repositories::default());
        let settings = Arc::new(crate::current::Current::new(settings));
        let secrets = Arc::new(crate::current::Current::new(secrets));
        let delivery = crate::delivery::Delivery::new(
            store.clone(),
            Arc::clone(&repos),
            Arc::clone(&settings),
            Arc::clone(&secrets),
        );
        let gate = Arc::new(crate::command_gate::CommandGate::new(policy, store.clone()));
        let scanner = Arc::new(crate::scan::Scanner::new(crate::scan::ScannerHandles {
            store: store.clone(),
            repos: Arc::clone(&repos),
            settings: Arc::clone(&settings),
            secrets: Arc::clone(&secrets),
            gate: Arc::clone(&gate),
            runner: Arc::clone(&runner),
            scratch_root: data_dir.to_path_buf(),
        }));
        let planner = crate::chat::Planner::new(store.clone(), Arc::clone(&settings));
        let agents = crate::external_agents::ExternalAgents::new(
            store.clone(),
            Arc::clone(&runner),
            Arc::clone(&secrets),
            data_dir.to_path_buf(),
        );
        let orchestrator = Arc::new(Self {
            store,
            repos,
            data_dir: data_dir.to_path_buf(),
            runner,
            settings,
            worktrees_dir: data_dir.join("worktrees"),
            slots: crate::fair_slots::FairSlots::new(max_parallel),
            cancels: crate::running_tasks::CancelSwitches::default(),
            gate,
            secrets,
            inboxes: crate::running_tasks::Inboxes::default(),
            planner,
            scanner,
            sandbox_probe: crate::readiness::SandboxProbe::default(),
            agents,
            delivery,
        });
        orchestrator.load_repositories().await?;
        if let Some(repo) = repo {
            orchestrator.ensure_local_repository(repo).await?;
        }
        for name in orchestrator.settings().repos.keys() {
            if orchestrator.repos.get(name).is_none()
                && orchestrator.repos.why_unavailable(name).is_none()
            {
                tracing::warn!(
                    repo = name.as_str(),
                    "config.toml has [repos.{name}], but no repository of that name is registered \
                     (`pushpals repo list` shows the names)"
                );
            }
        }
        orchestrator.recover().await?;
        Ok(orchestrator)
    }

    async fn recover(self: &Arc<Self>) -> OrchestratorResult<()> {
        let live: Vec<TaskState> = TaskState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        for task in self.store.tasks(Some(live)).await? {
            let reason = format!(
                "the orchestrator stopped while the task was {}; its worktree and branch are kept",
                task.state
            );
            let id = task.id.clone();
            self.store
                .write(move |tx| {
                    // Nobody waits on its approvals any more: close them
                    // with it (continuing the task asks again).
                    for approval in tx.pending_approvals(&id)? {
                        tx.withdraw_approval(
                            approval.id,
                            "orchestrator",
                            Some("the server stopped while the task waited; continue the task to ask again"),
                        )?;
                    }
                    tx.transition(
                        &id,
                        TaskState::Interrupted,
                        TaskUpdate {
                            reason: Some(reason),
                            ..TaskUpdate::default()
                        },
                        Actor::Orchestrator,
                        json!({ "on": "restart" }),
                    )
                })
                .await?;
        }
        // A `worktree add` cut short by the stop leaves an entry git then
        // chokes on for every later worktree: remove such entries of ours.
        let ours: Vec<String> = self
            .store
            .tasks(None)
            .await?
            .into_iter()
            .map(|task| task.id.as_str().to_owned())
            .collect();
        for served in self.repos.all() {
            let repaired = served.repo.repair_worktree_entries(&ours).await?;
            if !repaired.is_empty() {
                tracing::warn!(
                    repo = served.name(),
                    ?repaired,
                    "removed worktree entries a stop cut short"
                );
            }
        }
        self.settle_cut_short().await?;
        for task in self.store.tasks(Some(vec![TaskState::Queued])).await? {
            // Work for a repository not served now (an upgraded data dir
            // started without `--repo`) waits for it instead of failing.
            if self.repos.get(&task.repo).is_none() {
                tracing::warn!(task = %task.id, repo = %task.repo,
                    "a queued task waits for its repository: serve it (`serve --repo PATH`) and restart");
                continue;
            }
            self.spawn_driver(task.id);
        }
        Ok(())
    }

    /// Names the person's policy file (`policy.toml`), where approving a
    /// command with the `always` scope adds a rule.
    pub fn set_user_policy_file(&self, path: PathBuf) {
        self.gate.set_user_policy_file(path);
    }

    /// Adds the person's secret rules (`secrets.toml`) to the built-in ones.
    pub fn add_secret_rules(&self, text: &str, source_name: &str) -> OrchestratorResult<()> {
        let scanner = self
            .scanner()
            .with_user_rules(text, source_name)
            .map_err(|e| OrchestratorError::InvalidInput(e.to_string()))?;
        self.secrets.replace(scanner);
        Ok(())
    }

    /// The current secret scanner.
    pub(crate) fn scanner(&self) -> SecretScanner {
        self.secrets.get().as_ref().clone()
    }

    /// The current built-in and user policy.
    pub(crate) fn current_policy(&self) -> OrchestratorResult<Policy> {
        self.gate.policy()
    }

    /// The built-in and user command rules in force (a repository's own
    /// rules are added per task), with their sources.
    pub fn policy_rules(&self) -> OrchestratorResult<Vec<(String, pushpals_policy::RuleSpec)>> {
        Ok(self
            .current_policy()?
            .listed()
            .into_iter()
            .map(|(source, spec)| (source.to_owned(), spec.clone()))
            .collect())
    }

    /// The settings it was started with.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The served repositories.
    pub fn repositories(&self) -> &crate::repositories::Repositories {
        &self.repos
    }

    /// The name of the command runner's backend.
    pub fn runner_backend(&self) -> &'static str {
        self.runner.backend()
    }

    /// How many tasks may run at once.
    pub fn max_parallel(&self) -> usize {
        self.settings().max_parallel()
    }

    /// Creates a task and queues it.
    pub async fn create_task(
        self: &Arc<Self>,
        request: NewTask,
        actor: Actor,
    ) -> OrchestratorResult<Task> {
        let title = request.title.trim().to_owned();
        if title.is_empty() || title.len() > MAX_TITLE || title.contains('\n') {
            return Err(OrchestratorError::InvalidInput(format!(
                "a task needs a title of one line, 1 to {MAX_TITLE} bytes"
            )));
        }
        let (command, agent) = match (request.command, request.agent) {
            (Some(_), Some(_)) => {
                return Err(OrchestratorError::InvalidInput(
                    "give either a command to run or a brief for the agent, not both".into(),
                ));
            }
            (command, None) => (Some(self.checked_command(&title, command)?), None),
            (None, Some(work)) => (None, Some(self.checked_work(&title, work).await?)),
        };
        let served = self.resolve_repo(request.repo.as_deref())?;
        let mut attempts = 0;
        let task = loop {
            attempts += 1;
            if attempts > 20 {
                return Err(OrchestratorError::Internal(
                    "could not draw a task id whose branch is free".into(),
                ));
            }
            let id = new_task_id()?;
            let (title, command, agent, actor) =
                (title.clone(), command.clone(), agent.clone(), actor.clone());
            let branch_taken = served.repo.branch_commit(&id.branch()).await?.is_some();
            if branch_taken {
                continue;
            }
            let insert_id = id.clone();
            let approve_command = request.approve_command;
            let sandbox = self.sandbox_view(&served.repo);
            let repo_name = served.name().to_owned();
            match self
                .store
                .write(move |tx| {
                    let task = tx.insert_task(
                        pushpals_store::TaskRow {
                            id: &insert_id,
                            repo: &repo_name,
                            title: &title,
                            command: command.as_deref(),
                            agent: agent.as_ref(),
                            sandbox,
                        },
                        actor.clone(),
                    )?;
                    if approve_command && let Some(command) = &command {
                        tx.append(NewEvent::typed(
                            Some(&insert_id),
                            actor,
                            &PolicyDecision {
                                step: "worker".into(),
                                command: Some(command.clone()),
                                preapproved: true,
                                ..PolicyDecision::default()
                            },
                        )?)?;
                    }
                    Ok(task)
                })
                .await
            {
                Ok(task) => break task,
                // An id clash in the database: draw again.
                Err(StoreError::Duplicate(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        };
        if request.approve_command
            && let Some(command) = &task.command
        {
            self.gate.grant(&task.id, command);
        }
        self.spawn_driver(task.id.clone());
        Ok(task)
    }

    /// What a task's commands see, for its `task_created` event: the
    /// backend, the repository's stable path, the toolchains and their
    /// variables.
    fn sandbox_view(&self, repo: &Repo) -> serde_json::Value {
        json!({
            "backend": self.runner.backend(),
            "isolated": self.runner.isolated(),
            "stable_path": crate::warm_cache::stable_path(repo.root()),
            "toolchains": self.runner.toolchains(),
        })
    }

    /// Checks a command line (and the title it goes with): present, not
    /// blank, not too long, and holding no secret.
    pub(crate) fn checked_command(
        &self,
        title: &str,
        command: Option<String>,
    ) -> OrchestratorResult<String> {
        let command = match command {
            Some(line) if !line.trim().is_empty() && line.len() <= MAX_COMMAND => line,
            Some(_) => {
                return Err(OrchestratorError::InvalidInput(format!(
                    "the command must be 1 to {MAX_COMMAND} bytes and not blank"
                )));
            }
            None => {
                return Err(OrchestratorError::InvalidInput(
                    "a task needs a command to run (--run \"...\" on the command line, \
                     \"command\" in the API) or a prompt for the agent (--agent \"...\", \
                     \"agent\": {\"prompt\": ...})"
                        .into(),
                ));
            }
        };
        // A secret typed into the command line would end up in the task,
        // its events and its commit message: refuse it before storing.
        self.refuse_secrets(&format!("{title}\n{command}"), "the title or command")?;
        Ok(command)
    }

    /// Refuses `text` when it holds what looks like a secret; `what` names
    /// it in the error.
    pub(crate) fn refuse_secrets(&self, text: &str, what: &str) -> OrchestratorResult<()> {
        let scanner = self.scanner();
        if let std::borrow::Cow::Owned(redacted) = scanner.redact(text) {
            return Err(OrchestratorError::InvalidInput(format!(
                "{what} holds what looks like a secret ({}); nothing was stored. \
                 Keep secrets out of tasks: put them in a file the command reads, \
                 outside the repository",
                redacted
                    .split("[REDACTED:")
                    .skip(1)
                    .filter_map(|rest| rest.split(']').next())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(())
    }

    /// Cancels a task that has not ended: stops its worker or checks,
    /// withdraws its pending approvals. Its worktree and branch are kept.
    pub async fn cancel_task(&self, task_id: &TaskId, actor: Actor) -> OrchestratorResult<Task> {
        let task = self.store.task(task_id).await?;
        if task.state.is_final() {
            return Err(OrchestratorError::WrongState {
                task_id: task.id,
                state: task.state,
                what: "it has ended and cannot be cancelled".into(),
            });
        }
        let id = task_id.clone();
        let by = actor.to_string();
        let task = self
            .store
            .write(move |tx| {
                for approval in tx.pending_approvals(&id)? {
                    tx.withdraw_approval(approval.id, &by, Some("the task was cancelled"))?;
                }
                tx.transition(
                    &id,
                    TaskState::Cancelled,
                    TaskUpdate {
                        reason: Some(format!("cancelled by {by}")),
                        ..TaskUpdate::default()
                    },
                    actor,
                    json!(null),
                )
            })
            .await?;
        self.cancels.pull(task_id);
        Ok(task)
    }

    /// A task's diff against its base: from its worktree while it has one,
    /// else from its branch.
    pub async fn diff(&self, task_id: &TaskId) -> OrchestratorResult<TaskDiff> {
        let task = self.store.task(task_id).await?;
        let Some(base_commit) = task.base_commit.clone() else {
            return Err(OrchestratorError::WrongState {
                task_id: task.id,
                state: task.state,
                what: "it has no worktree yet, so there is no diff".into(),
            });
        };
        let served = self.served(&task.repo)?;
        let diff = match &task.worktree_path {
            Some(path) if Path::new(path).exists() => {
                served
                    .repo
                    .worktree(Path::new(path), &base_commit)
                    .diff()
                    .await?
            }
            _ => {
                if served.repo.branch_commit(&task.branch).await?.is_none() {
                    return Err(OrchestratorError::WrongState {
                        task_id: task.id,
                        state: task.state,
                        what: "its worktree and branch were removed, so there is no diff any more"
                            .into(),
                    });
                }
                served.repo.branch_diff(&task.branch, &base_commit).await?
            }
        };
        let scanner = self.scanner();
        let secret_findings = self
            .unallowed(&served.repo, &base_commit, scanner.scan_diff(&diff.text))
            .await;
        let diff = Diff {
            text: scanner.redact(&diff.text).into_owned(),
            files: diff.files,
        };
        let commit_message = scanner
            .redact(&self.commit_message(&task).await?)
            .into_owned();
        let pr_text = self.delivery.pr_body(&task).await?;
        Ok(TaskDiff {
            task_id: task.id,
            base_commit,
            branch: task.branch,
            diff,
            secret_findings,
            commit_message,
            pr_text,
        })
    }

    pub(crate) fn worktree_path(&self, task_id: &TaskId) -> PathBuf {
        self.worktrees_dir.join(task_id.as_str())
    }
}

/// Draws a fresh task id.
pub(crate) fn new_task_id() -> OrchestratorResult<TaskId> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| {
        OrchestratorError::Internal(format!("the system's random source failed: {e}"))
    })?;
    Ok(TaskId::from_random(bytes))
}
