//! The runners against real processes and the real sandbox. One test
//! binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;
