//! The suites, one module per concern.

mod forge;
mod git;
mod overlay;
mod secret_corpus;
