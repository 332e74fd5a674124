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
