//! The agent crate's integration tests (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;
