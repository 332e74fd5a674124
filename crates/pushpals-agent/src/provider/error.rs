//! What can go wrong talking to a model.

/// A model call that failed for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The API key's environment variable is not set.
    #[error(
        "model {model}: the environment variable {var} that should hold its API key is not set; export it before starting the server"
    )]
    MissingKey {
        /// The named model.
        model: String,
        /// The variable.
        var: String,
    },
    /// The provider refused the request (400, 401, 403, 404, ...); retrying
    /// would not help.
    #[error("model {model}: the provider answered {status}: {message}")]
    Rejected {
        /// The named model.
        model: String,
        /// The HTTP status.
        status: u16,
        /// The provider's own message.
        message: String,
    },
    /// Every retry failed.
    #[error("model {model}: gave up after {attempts} attempts; the last failure: {last}")]
    GaveUp {
        /// The named model.
        model: String,
        /// How many attempts were made.
        attempts: u32,
        /// What the last one saw.
        last: String,
    },
    /// The provider's answer could not be understood.
    #[error("model {model}: the reply is not understood: {detail}")]
    Protocol {
        /// The named model.
        model: String,
        /// What was wrong.
        detail: String,
    },
    /// No model of this name is configured.
    #[error(
        "no model named {0:?} is configured; add a [models.{0}] table to config.toml (protocol, base_url, model)"
    )]
    UnknownModel(String),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}
