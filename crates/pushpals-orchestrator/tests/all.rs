//! The orchestrator on real repositories, a real store and real processes.
//! One test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;
