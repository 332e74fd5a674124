//! The HTTP API through its router: auth, errors, decisions, the event
//! stream. One test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;
