//! The suites, one module per concern.

mod lifecycle;
mod policy_gate;
mod support;
