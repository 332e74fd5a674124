//! Identifiers. A [`TaskId`] ends up in branch names and paths, so it is
//! validated on every way in.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of a task: 1 to 40 characters of `a-z`, `0-9` and `-`, not starting
/// with `-`. Safe to use in a branch name (`pushpals/<id>`) and a path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(String);

/// A string that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid task id {given:?}: use 1 to 40 characters of a-z, 0-9 and '-', not starting with '-'"
)]
pub struct InvalidId {
    /// What was given.
    pub given: String,
}

const ID_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstvwxyz0123456789";
/// How many of [`ID_ALPHABET`]'s characters are letters (the rest are digits).
const ID_LETTERS: usize = 22;

impl TaskId {
    /// Parses and validates an id.
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let valid = !text.is_empty()
            && text.len() <= 40
            && !text.starts_with('-')
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidId {
                given: text.to_owned(),
            })
        }
    }

    /// Makes a new id from random bytes (the caller supplies the randomness,
    /// this crate does no I/O): 8 characters of an unambiguous alphabet,
    /// starting with a letter and ending with a digit, so that chat tells
    /// an id from a task number (all digits) and from a word (no digit).
    pub fn from_random(bytes: [u8; 8]) -> Self {
        let (letters, digits) = ID_ALPHABET.split_at(ID_LETTERS);
        let last = bytes.len() - 1;
        let text = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let b = usize::from(*b);
                char::from(match i {
                    0 => letters[b % letters.len()],
                    i if i == last => digits[b % digits.len()],
                    _ => ID_ALPHABET[b % ID_ALPHABET.len()],
                })
            })
            .collect();
        Self(text)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The git branch a task works on.
    pub fn branch(&self) -> String {
        format!("pushpals/{}", self.0)
    }

    /// The task's trace: an OpenTelemetry trace id (16 bytes) and the id
    /// of the span every span of the task hangs from (8 bytes), both
    /// derived from the task id, so the audit log and the traces name
    /// each other without storing anything.
    pub fn trace_ids(&self) -> ([u8; 16], [u8; 8]) {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("pushpals task {}", self.0).as_bytes());
        let mut trace = [0u8; 16];
        let mut span = [0u8; 8];
        trace.copy_from_slice(&digest[..16]);
        span.copy_from_slice(&digest[16..24]);
        (trace, span)
    }

    /// The task's trace id as OpenTelemetry writes it (32 hex digits).
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_ids().0)
    }
}

impl TryFrom<String> for TaskId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> Self {
        id.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of an event: its position in the log, starting at 1.
pub type EventId = i64;

/// The id of an approval request, starting at 1.
pub type ApprovalId = i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_generated_ids() {
        let id = TaskId::from_random([0, 1, 2, 31, 32, 200, 255, 7]);
        assert_eq!(id.as_str().len(), 8);
        assert_eq!(TaskId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.branch(), format!("pushpals/{id}"));
    }

    #[test]
    fn every_id_starts_with_a_letter_and_has_a_digit() {
        // Chat reads an all-digit word as a task number and a word without
        // a digit as a word: no id may look like either.
        for seed in 0..=255u8 {
            let bytes = [seed, seed, seed, seed, seed, seed, seed, seed];
            let id = TaskId::from_random(bytes);
            let text = id.as_str();
            assert!(text.as_bytes()[0].is_ascii_lowercase(), "{text}");
            assert!(text.bytes().any(|b| b.is_ascii_digit()), "{text}");
            assert!(text.bytes().all(|b| ID_ALPHABET.contains(&b)), "{text}");
        }
    }

    #[test]
    fn rejects_ids_that_could_escape_a_path_or_a_ref() {
        for bad in ["", "../x", "a/b", "A", "-x", "a b", "a.b", &"x".repeat(41)] {
            assert!(TaskId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<TaskId>("\"../../etc\"").is_err());
        assert!(serde_json::from_str::<TaskId>("\"abc-1\"").is_ok());
    }
}
