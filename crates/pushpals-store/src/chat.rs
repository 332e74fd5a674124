//! Each device's chat history: what the person said and what was answered,
//! kept per device (its token's name) and bounded, newest kept.

use crate::error::StoreResult;
use crate::sql::{Db, params};
use crate::write_tx::WriteTx;
use pushpals_core::timestamp::now;
use serde::Serialize;

/// How many lines a device keeps; older ones are dropped as new ones come.
pub const KEPT_PER_DEVICE: i64 = 500;

/// One line of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatLine {
    /// Its order among all lines.
    pub id: i64,
    /// When it was said (RFC 3339, UTC).
    pub at: String,
    /// `me` (the person) or `them` (Push Pals).
    pub who: String,
    /// What was said.
    pub text: String,
}

/// Who said a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// The person on the device.
    Person,
    /// Push Pals.
    PushPals,
}

impl Speaker {
    fn as_str(self) -> &'static str {
        match self {
            Self::Person => "me",
            Self::PushPals => "them",
        }
    }
}

impl WriteTx<'_> {
    /// Adds lines to `device`'s chat, in order, and drops what falls beyond
    /// [`KEPT_PER_DEVICE`].
    pub fn record_chat(&mut self, device: &str, lines: &[(Speaker, &str)]) -> StoreResult<()> {
        let at = now();
        for (who, text) in lines {
            self.tx.execute(
                "INSERT INTO chat_lines (device, at, who, text) VALUES (?1, ?2, ?3, ?4)",
                &params![device, at.as_str(), who.as_str(), *text],
            )?;
        }
        self.tx.execute(
            "DELETE FROM chat_lines WHERE device = ?1 AND id <= \
             (SELECT id FROM chat_lines WHERE device = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            &params![device, KEPT_PER_DEVICE],
        )?;
        Ok(())
    }
}

/// `device`'s last `limit` lines, oldest first.
pub(crate) fn history(conn: &dyn Db, device: &str, limit: u32) -> StoreResult<Vec<ChatLine>> {
    let mut lines = conn
        .query(
            "SELECT id, at, who, text FROM chat_lines WHERE device = ?1 ORDER BY id DESC LIMIT ?2",
            &params![device, limit],
        )?
        .iter()
        .map(|row| {
            Ok(ChatLine {
                id: row.get(0)?,
                at: row.get(1)?,
                who: row.get(2)?,
                text: row.get(3)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    lines.reverse();
    Ok(lines)
}
