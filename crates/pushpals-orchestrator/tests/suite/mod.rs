//! The suites, one module per concern.

mod agent;
mod artifacts;
mod base_fetch;
mod chat;
mod delivery;
mod delivery_once;
mod git_servers;
mod lifecycle;
mod policy_gate;
mod repo_delivery;
mod repo_sharing;
mod repositories;
mod restarts;
mod retention;
mod scan;
mod secret_scan;
mod support;
