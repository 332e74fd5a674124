//! The hash chain over the event log.
//!
//! Each event's hash is `SHA-256(prev_hash ‖ "\n" ‖ canonical)`, where
//! `canonical` is the RFC 8785 (JCS) encoding of the object
//! `{"v": 1, "id", "task_id", "time", "actor", "kind", "payload"}`. The
//! version field lets later schemas hash differently without breaking old
//! chains. The first event's `prev_hash` is [`GENESIS_HASH`].
//!
//! Over 400 lines: the chain is one concern (hashing an event, rebuilding
//! the hashed bytes from a stored row, verifying in order or in stretches);
//! about half the file is its tests, which check the two ways of building
//! the bytes against each other.

use crate::event::Event;
use crate::ids::EventId;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The version of the canonical encoding this code writes.
pub const CHAIN_VERSION: u64 = 1;

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of an event that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct HashedFields<'a> {
    /// Position in the log.
    pub id: EventId,
    /// The task, if any.
    pub task_id: Option<&'a str>,
    /// The time text.
    pub time: &'a str,
    /// The actor text.
    pub actor: &'a str,
    /// The kind's name.
    pub kind: &'a str,
    /// The details.
    pub payload: &'a Value,
}

impl<'a> HashedFields<'a> {
    /// The hashed fields of a stored event.
    pub fn of(event: &'a Event) -> Self {
        Self {
            id: event.id,
            task_id: event.task_id.as_deref(),
            time: &event.time,
            actor: &event.actor,
            kind: &event.kind,
            payload: &event.payload,
        }
    }
}

/// The canonical (RFC 8785) encoding of an event's hashed fields.
pub fn canonical_bytes(fields: HashedFields<'_>) -> Vec<u8> {
    let object = json!({
        "v": CHAIN_VERSION,
        "id": fields.id,
        "task_id": fields.task_id,
        "time": fields.time,
        "actor": fields.actor,
        "kind": fields.kind,
        "payload": fields.payload,
    });
    // Canonicalising a `Value` cannot fail: its keys are strings and its
    // numbers are finite.
    serde_json_canonicalizer::to_vec(&object).unwrap_or_else(|_| object.to_string().into_bytes())
}

/// A payload's canonical text (RFC 8785): what the store keeps, so the
/// hashed bytes can be rebuilt from the stored row without parsing it.
pub fn canonical_payload(payload: &Value) -> String {
    serde_json_canonicalizer::to_string(payload).unwrap_or_else(|_| payload.to_string())
}

/// A string as RFC 8785 writes it: `"` and `\\` escaped, the control
/// characters as `\b \f \n \r \t` or `\u00xx`, everything else as it is.
fn push_canonical_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let mut start = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text.as_bytes()[start..at]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = at + 1;
    }
    out.extend_from_slice(&text.as_bytes()[start..]);
    out.push(b'"');
}

/// The bytes [`canonical_bytes`] gives, built from a stored row: the
/// payload's stored text goes in as it is. They are the same bytes when
/// that text is the payload's canonical text ([`canonical_payload`], as
/// the store writes it), with no JSON parsed or written.
pub fn spliced_bytes(row: &StoredRow<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + row.payload_text.len() + row.time.len());
    splice_into(&mut out, row);
    out
}

fn splice_into(out: &mut Vec<u8>, row: &StoredRow<'_>) {
    out.clear();
    out.extend_from_slice(b"{\"actor\":");
    push_canonical_string(out, row.actor);
    out.extend_from_slice(b",\"id\":");
    push_integer(out, row.id);
    out.extend_from_slice(b",\"kind\":");
    push_canonical_string(out, row.kind);
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(row.payload_text.as_bytes());
    out.extend_from_slice(b",\"task_id\":");
    match row.task_id {
        Some(task_id) => push_canonical_string(out, task_id),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"time\":");
    push_canonical_string(out, row.time);
    out.extend_from_slice(b",\"v\":");
    push_integer(out, i64::try_from(CHAIN_VERSION).unwrap_or(i64::MAX));
    out.push(b'}');
}

/// An integer in decimal, as JSON writes it.
fn push_integer(out: &mut Vec<u8>, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// The SHA-256 of `prev_hash`, a newline and the row's spliced bytes,
/// built in `scratch`.
fn spliced_digest(prev_hash: &str, row: &StoredRow<'_>, scratch: &mut Vec<u8>) -> [u8; 32] {
    splice_into(scratch, row);
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(&scratch[..]);
    hasher.finalize().into()
}

/// The hash of a stored row whose payload text is canonical, from its
/// bytes as they are (see [`spliced_bytes`]).
pub fn spliced_hash(prev_hash: &str, row: &StoredRow<'_>) -> String {
    hex::encode(spliced_digest(prev_hash, row, &mut Vec::new()))
}

/// The hash of an event that follows `prev_hash`, as lowercase hex.
pub fn event_hash(prev_hash: &str, fields: HashedFields<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_bytes(fields));
    hex::encode(hasher.finalize())
}

/// Why the chain broke at an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakReason {
    /// The event's `prev_hash` is not the previous event's hash.
    PrevHashMismatch {
        /// What the chain expected.
        expected: String,
    },
    /// The event's content does not hash to its stored hash.
    HashMismatch {
        /// The hash of what is stored now.
        computed: String,
    },
    /// The stored payload is not JSON any more.
    PayloadNotJson,
    /// Ids are not consecutive: events were removed.
    Gap {
        /// The id that should have come next.
        expected_id: EventId,
    },
}

/// The first event where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The event's id.
    pub event_id: EventId,
    /// What is wrong with it.
    pub reason: BreakReason,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.event_id;
        match &self.reason {
            BreakReason::PrevHashMismatch { .. } => {
                write!(
                    f,
                    "event {id}: its prev_hash is not the hash of the event before it"
                )
            }
            BreakReason::HashMismatch { .. } => {
                write!(
                    f,
                    "event {id}: its content does not match its hash (changed after it was written)"
                )
            }
            BreakReason::PayloadNotJson => {
                write!(f, "event {id}: its payload is no longer valid JSON")
            }
            BreakReason::Gap { expected_id } => {
                write!(f, "event {id}: event {expected_id} is missing from the log")
            }
        }
    }
}

/// An event row as it is stored, all text, for verification.
#[derive(Debug, Clone, Copy)]
pub struct StoredRow<'a> {
    /// Position in the log.
    pub id: EventId,
    /// The task, if any.
    pub task_id: Option<&'a str>,
    /// The time text.
    pub time: &'a str,
    /// The actor text.
    pub actor: &'a str,
    /// The kind's name.
    pub kind: &'a str,
    /// The payload as stored text.
    pub payload_text: &'a str,
    /// The stored link to the previous event.
    pub prev_hash: &'a str,
    /// The stored hash.
    pub hash: &'a str,
}

/// Checks events one by one, in id order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev_hash: String,
    next_id: EventId,
    checked: u64,
    /// Reused for each row's spliced bytes.
    scratch: Vec<u8>,
    /// A stretch verified apart takes its first event's `prev_hash` as
    /// given; this is it, once seen (the caller checks the link).
    entry: Option<String>,
    open_link: bool,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            prev_hash: GENESIS_HASH.to_owned(),
            next_id: 1,
            checked: 0,
            scratch: Vec::new(),
            entry: None,
            open_link: false,
        }
    }
}

impl ChainVerifier {
    /// A verifier for the stretch of the log that starts at event
    /// `first_id`, checked apart from the events before it (in parallel):
    /// its first event's `prev_hash` is taken as given and kept
    /// ([`ChainVerifier::entry_hash`]) for the caller to match with the
    /// hash the stretch before ends in.
    pub fn for_stretch(first_id: EventId) -> Self {
        Self {
            next_id: first_id,
            open_link: true,
            ..Self::default()
        }
    }

    /// The `prev_hash` a stretch's first event names (see
    /// [`ChainVerifier::for_stretch`]); `None` before it was seen.
    pub fn entry_hash(&self) -> Option<&str> {
        self.entry.as_deref()
    }

    /// Checks the next event. The payload is given as stored text so that a
    /// payload damaged into invalid JSON is reported, not skipped.
    ///
    /// The store keeps payloads in their canonical text, so the hashed bytes
    /// are rebuilt from the row as it is and hashed, with no JSON parsed
    /// ([`spliced_hash`]); only a row whose text is not canonical (written
    /// before the store kept it so, or changed since) is parsed and
    /// canonicalized, and a change is named as before.
    pub fn check(&mut self, row: StoredRow<'_>) -> Result<(), ChainBreak> {
        if self.open_link {
            self.open_link = false;
            self.entry = Some(row.prev_hash.to_owned());
            row.prev_hash.clone_into(&mut self.prev_hash);
        }
        let mut stored = [0u8; 32];
        if row.id == self.next_id
            && row.prev_hash == self.prev_hash
            && hex::decode_to_slice(row.hash, &mut stored).is_ok()
            && spliced_digest(row.prev_hash, &row, &mut self.scratch) == stored
        {
            row.hash.clone_into(&mut self.prev_hash);
            self.next_id += 1;
            self.checked += 1;
            return Ok(());
        }
        let StoredRow {
            id: event_id,
            task_id,
            time,
            actor,
            kind,
            payload_text,
            prev_hash,
            hash,
        } = row;
        let broken = |reason| ChainBreak { event_id, reason };
        if event_id != self.next_id {
            return Err(broken(BreakReason::Gap {
                expected_id: self.next_id,
            }));
        }
        if prev_hash != self.prev_hash {
            return Err(broken(BreakReason::PrevHashMismatch {
                expected: self.prev_hash.clone(),
            }));
        }
        let payload: Value =
            serde_json::from_str(payload_text).map_err(|_| broken(BreakReason::PayloadNotJson))?;
        let fields = HashedFields {
            id: event_id,
            task_id,
            time,
            actor,
            kind,
            payload: &payload,
        };
        let computed = event_hash(prev_hash, fields);
        if computed != hash {
            return Err(broken(BreakReason::HashMismatch { computed }));
        }
        self.prev_hash = computed;
        self.next_id += 1;
        self.checked += 1;
        Ok(())
    }

    /// How many events passed.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The hash of the last event that passed (the head).
    pub fn head_hash(&self) -> &str {
        &self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<(i64, String, String, String)> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut out = Vec::new();
        for id in 1..=n {
            let payload = format!("{{\"n\":{id},\"text\":\"é\"}}");
            let value: Value = serde_json::from_str(&payload).unwrap();
            let hash = event_hash(
                &prev,
                HashedFields {
                    id,
                    task_id: Some("t1"),
                    time: "2026-01-01T00:00:00.000Z",
                    actor: "orchestrator",
                    kind: "output",
                    payload: &value,
                },
            );
            out.push((id, payload, prev.clone(), hash.clone()));
            prev = hash;
        }
        out
    }

    fn verify(events: &[(i64, String, String, String)]) -> Result<u64, ChainBreak> {
        let mut verifier = ChainVerifier::default();
        for (id, payload, prev, hash) in events {
            verifier.check(StoredRow {
                id: *id,
                task_id: Some("t1"),
                time: "2026-01-01T00:00:00.000Z",
                actor: "orchestrator",
                kind: "output",
                payload_text: payload,
                prev_hash: prev,
                hash,
            })?;
        }
        Ok(verifier.checked())
    }

    #[test]
    fn spliced_bytes_are_the_canonical_bytes_for_a_canonical_payload() {
        let payloads = [
            json!({ "z": 1, "a": [1.5, 2e-7, 1e21, -0.0, 12345678901234567u64], "m": { "b": null, "a": true } }),
            json!({ "text": "quote \" back \\ nl \n cr \r tab \t bs \u{8} ff \u{c} nul \u{0} us \u{1f} del \u{7f} ls \u{2028} \u{e9}\u{1f600}" }),
            json!("just a string"),
            json!(null),
            json!([]),
        ];
        for payload in &payloads {
            for (task_id, actor) in [(Some("t-\"1\n"), "user:a\\b"), (None, "orchestrator")] {
                let fields = HashedFields {
                    id: 42,
                    task_id,
                    time: "2026-01-01T00:00:00.000Z",
                    actor,
                    kind: "output",
                    payload,
                };
                let text = canonical_payload(payload);
                let row = StoredRow {
                    id: 42,
                    task_id,
                    time: fields.time,
                    actor,
                    kind: "output",
                    payload_text: &text,
                    prev_hash: GENESIS_HASH,
                    hash: "",
                };
                assert_eq!(
                    String::from_utf8(spliced_bytes(&row)).unwrap(),
                    String::from_utf8(canonical_bytes(fields)).unwrap()
                );
                assert_eq!(
                    spliced_hash(GENESIS_HASH, &row),
                    event_hash(GENESIS_HASH, fields)
                );
            }
        }
    }

    #[test]
    fn a_payload_stored_in_another_form_still_verifies_the_slow_way() {
        // Older stores kept serde_json's text, not the canonical one: the
        // same JSON in other bytes verifies by parsing it.
        let value = json!({ "b": 1e21, "a": "x" });
        let hash = event_hash(
            GENESIS_HASH,
            HashedFields {
                id: 1,
                task_id: None,
                time: "t",
                actor: "a",
                kind: "k",
                payload: &value,
            },
        );
        let mut verifier = ChainVerifier::default();
        let stored = "{ \"a\": \"x\", \"b\": 1000000000000000000000.0 }";
        assert_ne!(stored, canonical_payload(&value));
        verifier
            .check(StoredRow {
                id: 1,
                task_id: None,
                time: "t",
                actor: "a",
                kind: "k",
                payload_text: stored,
                prev_hash: GENESIS_HASH,
                hash: &hash,
            })
            .unwrap();
        assert_eq!(verifier.head_hash(), hash);
    }

    #[test]
    fn stretches_verified_apart_name_the_hash_they_start_from() {
        let events = chain(6);
        let mut second = ChainVerifier::for_stretch(4);
        for (id, payload, prev, hash) in &events[3..] {
            second
                .check(StoredRow {
                    id: *id,
                    task_id: Some("t1"),
                    time: "2026-01-01T00:00:00.000Z",
                    actor: "orchestrator",
                    kind: "output",
                    payload_text: payload,
                    prev_hash: prev,
                    hash,
                })
                .unwrap();
        }
        assert_eq!(second.checked(), 3);
        assert_eq!(second.entry_hash(), Some(events[2].3.as_str()));
        assert_eq!(second.head_hash(), events[5].3);
        // A stretch must start where it was told to.
        let mut late = ChainVerifier::for_stretch(3);
        let (id, payload, prev, hash) = &events[3];
        let gap = late
            .check(StoredRow {
                id: *id,
                task_id: Some("t1"),
                time: "2026-01-01T00:00:00.000Z",
                actor: "orchestrator",
                kind: "output",
                payload_text: payload,
                prev_hash: prev,
                hash,
            })
            .unwrap_err();
        assert_eq!(gap.reason, BreakReason::Gap { expected_id: 3 });
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn canonical_encoding_ignores_key_order_and_whitespace() {
        let a: Value = serde_json::from_str("{\"b\":1,\"a\":[1, 2]}").unwrap();
        let b: Value = serde_json::from_str("{ \"a\": [1,2], \"b\": 1 }").unwrap();
        let fields = |payload| HashedFields {
            id: 1,
            task_id: None,
            time: "t",
            actor: "a",
            kind: "k",
            payload,
        };
        assert_eq!(canonical_bytes(fields(&a)), canonical_bytes(fields(&b)));
        assert_eq!(event_hash(GENESIS_HASH, fields(&a)).len(), 64);
    }

    #[test]
    fn a_changed_payload_names_its_event() {
        let mut events = chain(4);
        events[2].1 = events[2].1.replace("\"n\":3", "\"n\":4");
        let err = verify(&events).unwrap_err();
        assert_eq!(err.event_id, 3);
        assert!(matches!(err.reason, BreakReason::HashMismatch { .. }));
        assert!(err.to_string().contains("event 3"));
    }

    #[test]
    fn damaged_json_and_gaps_are_breaks() {
        let mut events = chain(3);
        events[1].1.push('x');
        assert_eq!(
            verify(&events).unwrap_err().reason,
            BreakReason::PayloadNotJson
        );

        let mut events = chain(3);
        events.remove(1);
        assert_eq!(
            verify(&events).unwrap_err(),
            ChainBreak {
                event_id: 3,
                reason: BreakReason::Gap { expected_id: 2 }
            }
        );
    }

    #[test]
    fn a_relinked_event_is_caught_by_prev_hash() {
        let mut events = chain(3);
        events[2].2 = GENESIS_HASH.to_owned();
        assert!(matches!(
            verify(&events).unwrap_err().reason,
            BreakReason::PrevHashMismatch { .. }
        ));
    }
}
