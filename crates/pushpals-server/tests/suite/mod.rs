//! The suites, one module per concern.

mod api;
mod authorization;
mod operate;
mod pairing;
mod stream;
mod support;
mod worker_agent_runs;
mod worker_artifacts;
mod worker_bases;
mod worker_mirror;
mod worker_runs;
mod worker_tunnels;
mod worker_warm;
mod workers;
