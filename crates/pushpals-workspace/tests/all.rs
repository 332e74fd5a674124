//! Git and the forge against real repositories and a local forge server.
//! One test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;
