//! Event-stream frames (`id: …` / `data: …`), made once per event and
//! shared by every subscriber: each holds a reference count, not a copy,
//! so a thousand subscribers, reading or not, cost one copy of each event
//! and a short queue of references each.

use axum::body::Bytes;
use pushpals_core::Event;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How many recent frames are kept for subscribers to share.
const KEPT: usize = 1024;

/// The frames of recent events.
#[derive(Debug, Default)]
pub struct Frames {
    recent: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    by_id: HashMap<i64, Bytes>,
    order: VecDeque<i64>,
}

impl Frames {
    /// The frame of `event`: the shared one when it was made already.
    pub fn frame(&self, event: &Event) -> Bytes {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(frame) = recent.by_id.get(&event.id) {
            return frame.clone();
        }
        let frame = encode(event);
        recent.by_id.insert(event.id, frame.clone());
        recent.order.push_back(event.id);
        while recent.order.len() > KEPT {
            if let Some(old) = recent.order.pop_front() {
                recent.by_id.remove(&old);
            }
        }
        frame
    }
}

/// One Server-Sent Events frame; compact JSON has no line breaks, so the
/// data is one line.
fn encode(event: &Event) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("id: {}\ndata: {data}\n\n", event.id))
}

/// The comment a quiet stream sends so proxies keep it open.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn event(id: i64, text: &str) -> Event {
        Event {
            id,
            task_id: None,
            time: String::new(),
            actor: "orchestrator".into(),
            kind: "output".into(),
            payload: serde_json::json!({ "text": text }),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn subscribers_share_one_frame_per_event() {
        let frames = Frames::default();
        let first = frames.frame(&event(7, "line\nnext"));
        let second = frames.frame(&event(7, "line\nnext"));
        assert_eq!(first.as_ptr(), second.as_ptr(), "a copy was made");
        let text = std::str::from_utf8(&first).unwrap();
        assert!(text.starts_with("id: 7\ndata: {"), "{text}");
        assert_eq!(text.matches('\n').count(), 3, "{text}");
    }

    #[test]
    fn only_recent_frames_are_kept() {
        let frames = Frames::default();
        for id in 0..(KEPT as i64 + 10) {
            frames.frame(&event(id, "x"));
        }
        let recent = frames.recent.lock().unwrap();
        assert_eq!(recent.by_id.len(), KEPT);
        assert!(!recent.by_id.contains_key(&0));
    }
}
