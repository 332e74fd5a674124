//! The suites, one module per concern.

mod acme;
mod agent;
mod attacks;
mod backup;
mod companion;
mod container;
mod crash;
mod defects;
mod doctor;
mod errors;
mod external_agents;
mod follow_and_policy;
mod full_disk;
mod network;
mod postgres;
mod real_projects;
mod real_setup;
mod scan;
mod secrets;
mod service;
mod setup_step;
mod slow_clients;
mod spine;
mod support;
mod tls;
mod traces;
mod worker_agents;
mod worker_fleet;
mod worker_setup;
mod workers;

/// The warm caches of the one repository a test's server serves: under its
/// home in `repos/`.
pub(crate) fn caches_dir(data: &std::path::Path) -> std::path::PathBuf {
    let homes: Vec<std::path::PathBuf> = std::fs::read_dir(data.join("repos"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert_eq!(homes.len(), 1, "one repository expected: {homes:?}");
    homes[0].join("caches")
}
