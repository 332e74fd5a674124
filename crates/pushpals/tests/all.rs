//! End-to-end tests of the `pushpals` binary: the real server on temporary
//! repositories, driven through its own command line. One test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;
