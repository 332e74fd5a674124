//! The suites, one module per concern.

mod container_escapes;
mod escapes;
mod host_runner;
mod resident;
mod shell;
mod toolchains;
