//! The suites, one module per concern.

mod escapes;
mod host_runner;
