//! The records of who may act and be told: tokens (never their secrets),
//! autonomy grants, and browsers' Web Push subscriptions, as the store
//! reads them.

use crate::sql::params;
use crate::{Store, StoreError, StoreResult};
use pushpals_core::GrantKind;

/// A browser's Web Push subscription.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushSubscription {
    /// The token (device) that subscribed.
    pub token_name: String,
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// The browser's P-256 public key (base64url, uncompressed point).
    pub p256dh: String,
    /// The browser's auth secret (base64url, 16 bytes).
    pub auth: String,
}

/// A token as listed (never its hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Its id.
    pub id: i64,
    /// Its name (`admin`, `device:<name>`).
    pub name: String,
    /// Its scopes, space separated.
    pub scopes: String,
    /// When it was issued.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// A token's stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's name (shown as the actor of what it does).
    pub name: String,
    /// Its scopes, space separated.
    pub scopes: String,
}

/// An autonomy grant in force.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrantRecord {
    /// What it lets happen.
    pub kind: GrantKind,
    /// Who gave it.
    pub granted_by: String,
    /// When (RFC 3339).
    pub granted_at: String,
}

impl Store {
    /// The autonomy grants in force in one repository: kind, who gave
    /// it, when.
    pub async fn grants(&self, repo: &str) -> StoreResult<Vec<GrantRecord>> {
        let repo = repo.to_owned();
        self.read(move |conn| {
            let rows = conn.query(
                "SELECT kind, granted_by, granted_at FROM grants WHERE repo = ?1 ORDER BY kind",
                &params![repo.as_str()],
            )?;
            let mut grants = Vec::new();
            for row in rows {
                let (kind, granted_by, granted_at): (String, String, String) =
                    (row.get(0)?, row.get(1)?, row.get(2)?);
                let kind = GrantKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                    table: "grants",
                    detail: format!("unknown grant {kind:?}"),
                })?;
                grants.push(GrantRecord {
                    kind,
                    granted_by,
                    granted_at,
                });
            }
            Ok(grants)
        })
        .await
    }

    /// Every push subscription.
    pub async fn push_subscriptions(&self) -> StoreResult<Vec<PushSubscription>> {
        self.read(|conn| {
            conn.query(
                "SELECT token_name, endpoint, p256dh, auth FROM push_subscriptions ORDER BY id",
                &params![],
            )?
            .iter()
            .map(|row| {
                Ok(PushSubscription {
                    token_name: row.get(0)?,
                    endpoint: row.get(1)?,
                    p256dh: row.get(2)?,
                    auth: row.get(3)?,
                })
            })
            .collect()
        })
        .await
    }

    /// Every token ever issued, without hashes, oldest first.
    pub async fn token_list(&self) -> StoreResult<Vec<TokenInfo>> {
        self.read(|conn| {
            conn.query(
                "SELECT id, name, scopes, created_at, revoked_at FROM tokens ORDER BY id",
                &params![],
            )?
            .iter()
            .map(|row| {
                Ok(TokenInfo {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    scopes: row.get(2)?,
                    created_at: row.get(3)?,
                    revoked_at: row.get(4)?,
                })
            })
            .collect()
        })
        .await
    }

    /// A live token's record by its hash.
    pub async fn token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            conn.query_opt(
                "SELECT name, scopes FROM tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
                &params![token_hash],
            )?
            .map(|row| {
                Ok(TokenRecord {
                    name: row.get(0)?,
                    scopes: row.get(1)?,
                })
            })
            .transpose()
        })
        .await
    }
}
