//! Push Pals' built-in agent.
//!
//! - [`provider`]: real model wire protocols (OpenAI-compatible Chat
//!   Completions, Anthropic Messages), streaming, retries and usage.
//! - [`agent`]: the worker's tool loop, with budgets, cancellation, output
//!   truncation and summarising of old turns.
//! - [`tools`]: list, read, search, write and edit, confined to the worktree
//!   with `openat2`; commands and messages go through the [`AgentHost`].
//! - [`plan`]: the planner that turns a chat message into a backlog.
//! - [`external`]: adapters that run external agent CLIs as workers.
//! - [`gateway`]: the model gateway external agents reach their model
//!   through, with a per-task token instead of the real key.
//!
//! The agent touches neither git nor the store: the orchestrator runs it and
//! implements [`AgentHost`].

#![forbid(unsafe_code)]

pub mod agent;
pub mod budget;
pub mod config;
pub mod context;
pub mod conversation;
pub mod external;
pub mod gateway;
pub mod host;
pub mod plan;
pub mod prompt;
pub mod provider;
pub mod tools;

pub use agent::{AgentError, AgentRun, Finished, run};
pub use budget::Budget;
pub use config::{AgentConfig, ModelConfig, Protocol};
pub use gateway::{
    Gateway, GatewayCall, GatewayServer, GatewayToken, Issue, Judge, ToolUse, Verdict,
};
pub use host::{AgentHost, CommandOutcome, HostError};
pub use prompt::Brief;
pub use provider::{ModelClient, ProviderError};
