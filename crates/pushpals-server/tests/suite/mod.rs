//! The suites, one module per concern.

mod api;
mod pairing;
mod stream;
mod support;
