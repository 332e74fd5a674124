//! Translation between protocols, through the provider-neutral
//! conversation: an agent's request is read into it, the task's model is
//! called with its own protocol, and the reply is written back in the
//! agent's. What does not carry over (images, thinking, cache hints) is
//! dropped; a streamed reply is sent once the model's reply is complete.

pub(crate) mod read;
pub(crate) mod write;

#[cfg(test)]
mod tests;
