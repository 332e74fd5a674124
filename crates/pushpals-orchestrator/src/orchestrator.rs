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

/// Takes tasks from creation to an approved commit. Shared as
/// `Arc<Orchestrator>`. It wires parts together, checks requests and hands
/// them to the part they are for; it holds no lock of its own: each field
/// that changes while serving is a part owning its state (the repositories,
/// the command gate, the task lifecycle, the planner, the scanner, the
/// sandbox probe, delivery).
pub struct Orchestrator {
    pub(crate) store: Store,
    /// The served repositories, each with its checkout, caches and fetches.
    pub(crate) repos: Arc<crate::repositories::Repositories>,
    pub(crate) data_dir: PathBuf,
    pub(crate) runner: Arc<dyn Runner>,
    /// The settings in force; replaced whole by a reload (`settings()`).
    pub(crate) settings: Arc<crate::current::Current<Settings>>,
    pub(crate) worktrees_dir: PathBuf,
    /// The command policy in force, grants for a task, and the drivers
    /// waiting on a command approval.
    pub(crate) gate: Arc<crate::command_gate::CommandGate>,
    /// Finds and redacts secrets in output and diffs.
    pub(crate) secrets: Arc<crate::current::Current<SecretScanner>>,
    /// Tasks from queued to their commit, with what runs tasks keep.
    pub(crate) tasks: Arc<crate::lifecycle::Lifecycle>,
    /// The planner, with the plans it is making or holding for an OK.
    pub(crate) planner: crate::chat::Planner,
    /// The proactive scanner, with its turns and schedule.
    pub(crate) scanner: Arc<crate::scan::Scanner>,
    /// The last sandbox probe of `/readyz`, reused for a while.
    pub(crate) sandbox_probe: crate::readiness::SandboxProbe,
    /// Pushes, pull requests and merges, each after its approval.
    pub(crate) delivery: Arc<crate::delivery::Delivery>,
    /// Worker hosts and the runs they hold.
    pub(crate) dispatch: Arc<crate::dispatch::Dispatch>,
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
        let secrets = SecretScanner::builtin()
            .map_err(|e| OrchestratorError::Internal(format!("the built-in secret rules: {e}")))?;
        let repos = Arc::new(crate::repositories::Repositories::default());
        let settings = Arc::new(crate::current::Current::new(settings));
        let secrets = Arc::new(crate::current::Current::new(secrets));
        let delivery = Arc::new(crate::delivery::Delivery::new(
            store.clone(),
            Arc::clone(&repos),
            Arc::clone(&settings),
            Arc::clone(&secrets),
        ));
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
        let dispatch = Arc::new(crate::dispatch::Dispatch::new(
            store.clone(),
            Arc::clone(&settings),
        ));
        dispatch.start_sweeping();
        let tasks = Arc::new(crate::lifecycle::Lifecycle::new(
            crate::lifecycle::LifecycleHandles {
                store: store.clone(),
                repos: Arc::clone(&repos),
                runner: Arc::clone(&runner),
                settings: Arc::clone(&settings),
                secrets: Arc::clone(&secrets),
                gate: Arc::clone(&gate),
                delivery: Arc::clone(&delivery),
                dispatch: Arc::clone(&dispatch),
                data_dir: data_dir.to_path_buf(),
            },
        ));
        let orchestrator = Arc::new(Self {
            store,
            repos,
            data_dir: data_dir.to_path_buf(),
            runner,
            settings,
            worktrees_dir: data_dir.join("worktrees"),
            gate,
            secrets,
            tasks,
            planner,
            scanner,
            sandbox_probe: crate::readiness::SandboxProbe::default(),
            delivery,
            dispatch,
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
        self.tasks.settle_cut_short().await?;
        self.delivery.reopen_interrupted_deliveries().await?;
        for task in self.store.tasks(Some(vec![TaskState::Queued])).await? {
            // Work for a repository not served now (an upgraded data dir
            // started without `--repo`) waits for it instead of failing.
            if self.repos.get(&task.repo).is_none() {
                tracing::warn!(task = %task.id, repo = %task.repo,
                    "a queued task waits for its repository: serve it (`serve --repo PATH`) and restart");
                continue;
            }
            self.tasks.start_task(task.id);
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

    /// Worker hosts: what they ask for and report, and what each does.
    pub fn dispatch(&self) -> &Arc<crate::dispatch::Dispatch> {
        &self.dispatch
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
            (command, None) => (Some(self.tasks.checked_command(&title, command)?), None),
            (None, Some(work)) => (None, Some(self.tasks.checked_work(&title, work).await?)),
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
        self.tasks.start_task(task.id.clone());
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
        self.tasks.stop_driver(task_id);
        Ok(task)
    }

    /// Continues an ended task with a new command (an agent task: the
    /// person's feedback): a new run in the same worktree and on the same
    /// branch. Its pending approvals are withdrawn.
    pub async fn continue_task(
        &self,
        task_id: &TaskId,
        command: Option<String>,
        approve_command: bool,
        actor: Actor,
    ) -> OrchestratorResult<Task> {
        self.tasks
            .continue_task(task_id, command, approve_command, actor)
            .await
    }

    /// Unmounts the tasks' overlay worktrees as the server stops, so the
    /// data directory can be moved or removed; the next start mounts them
    /// again.
    pub async fn release_worktrees(&self) {
        self.tasks.release_worktrees().await;
    }

    /// A task's diff against its base: from its worktree while it has one,
    /// else from its branch.
    pub async fn diff(&self, task_id: &TaskId) -> OrchestratorResult<TaskDiff> {
        let task = self.store.task(task_id).await?;
        let served = self.served(&task.repo)?;
        let (base_commit, diff) = crate::secret_gate::raw_diff(&served, &task).await?;
        let scanner = self.scanner();
        let secret_findings = crate::secret_gate::unallowed(
            &served.repo,
            &base_commit,
            scanner.scan_diff(&diff.text),
        )
        .await;
        let diff = Diff {
            text: scanner.redact(&diff.text).into_owned(),
            files: diff.files,
        };
        let commit_message = scanner
            .redact(&self.tasks.commit_message(&task).await?)
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
}

/// Draws a fresh task id.
pub(crate) fn new_task_id() -> OrchestratorResult<TaskId> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| {
        OrchestratorError::Internal(format!("the system's random source failed: {e}"))
    })?;
    Ok(TaskId::from_random(bytes))
}
