//! The orchestrator of Push Pals: it takes tasks from creation to an
//! approved commit.
//!
//! For each task it makes a worktree on `pushpals/<id>`, runs the task's
//! worker (a command line, the built-in agent, or an external agent, each in
//! the sandbox through a [`Runner`](pushpals_sandbox::Runner)),
//! runs the repository's checks from `pushpals.toml` at the base commit,
//! computes the diff, asks for an approval and, once approved, commits. Every
//! step is a persisted, hash-chained event. Up to `max_parallel` tasks run at
//! once as independent tokio tasks. It does not serve HTTP.

#![forbid(unsafe_code)]

mod agent_steps;
mod agent_versions;
mod artifact_summary;
mod artifacts;
mod autonomy;
mod base_fetch;
mod chat;
mod check_trial;
mod checks;
mod command_gate;
mod current;
mod decide;
mod delivery;
mod dispatch;
mod error;
mod external_agents;
mod fair_slots;
mod judge;
mod lifecycle;
mod models;
mod orchestrator;
mod output;
mod readiness;
mod registries;
mod repo_admin;
mod repo_settings;
mod repositories;
mod retention;
mod run_stop;
mod running_tasks;
mod sandbox_access;
mod scan;
mod secret_gate;
mod settings;
mod settings_reload;
mod setup_config;
mod store_settings;
mod summary;
mod trace_link;
mod warm_cache;
mod worker_artifacts;
mod worker_base;
pub mod worker_host;
mod worker_settings;

pub use artifacts::MAX_ARTIFACT_BYTES;
pub use chat::{ChatReply, CheckStatus, Intent, TaskRef, TaskStatus};
pub use check_trial::CheckTrial;
pub use checks::{Check, RepoConfig};
pub use command_gate::ApprovalScope;
pub use decide::DecisionOutcome;
pub use dispatch::{
    DispatchError, MAX_DIFF as MAX_WORKER_DIFF, MAX_TUNNELS, MAX_TUNNELS_PER_COMMAND, Relay,
    TunnelPermit, WorkerActivity,
};
pub use error::{OrchestratorError, OrchestratorResult};
pub use orchestrator::{NewTask, Orchestrator, TaskDiff};
pub use readiness::{Readiness, ReadyCheck};
pub use repo_admin::{AddRepository, RepositoryView};
pub use repo_settings::RepoSettings;
pub use repositories::{Repositories, ServedRepo, valid_repo_name};
pub use retention::{CacheSpace, GcReport, SpaceReport};
pub use scan::ScanReport;
pub use settings::{
    AcmeSettings, DeliverySettings, FetchFailure, ForgeSettings, GitSettings, LimitSettings,
    LogFormat, NetworkSettings, NotifySettings, RetentionSettings, SandboxSettings, ServerSettings,
    Settings, TelemetrySettings, TlsSettings,
};
pub use settings_reload::Reload;
pub use setup_config::{Reach, Registry, SetupSection, SetupSource, SetupStep};
pub use store_settings::StoreSettings;
pub use warm_cache::{CopyMethod, copy_method as cache_copy_method};
pub use worker_settings::{WorkerSettings, valid_label};
