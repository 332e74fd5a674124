//! The suites, one module per concern.

mod api;
mod stream;
mod support;
