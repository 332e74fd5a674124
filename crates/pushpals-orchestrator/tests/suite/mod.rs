//! The suites, one module per concern.

mod delivery;
mod lifecycle;
mod policy_gate;
mod support;
