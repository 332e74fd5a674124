//! Putting a streamed reply together from server-sent events.

use crate::conversation::ModelReply;

/// Whether a stream has more to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep reading.
    More,
    /// The reply is complete.
    Done,
}

/// A reply being assembled from one provider's stream events.
pub(crate) trait Partial: Default {
    /// Takes one event (`event` is its name, empty when unnamed).
    fn feed(&mut self, event: &str, data: &str) -> Result<Flow, String>;
    /// The complete reply.
    fn finish(self) -> Result<ModelReply, String>;
}
