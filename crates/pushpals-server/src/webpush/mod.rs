//! Web Push to paired browsers: the server's VAPID key, checking
//! subscriptions, and sending encrypted notices to push services.

pub mod crypto;

use crate::notify::Notice;
use crypto::{PushCryptoError, b64, b64_encode, browser_key, encrypt, vapid_authorization};
use p256::SecretKey;
use p256::ecdsa::SigningKey;
use pushpals_store::{PushSubscription, Store};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The file holding the server's VAPID private key (hex, mode 0600).
pub const VAPID_KEY_FILE: &str = "vapid.key";

/// The server's VAPID identity.
#[derive(Clone)]
pub struct Vapid {
    key: SigningKey,
    /// Who to contact about these pushes (`mailto:` or `https:`).
    pub subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public_key())
            .finish()
    }
}

fn random_secret() -> std::io::Result<SecretKey> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            return Ok(secret);
        }
    }
}

impl Vapid {
    /// Loads the key from the data directory, making it on first start.
    pub fn load_or_create(data_dir: &Path, subject: String) -> std::io::Result<Self> {
        let path = data_dir.join(VAPID_KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(std::io::Error::other)?;
                SigningKey::from_slice(&bytes).map_err(std::io::Error::other)?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_secret()?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                writeln!(file, "{}", hex::encode(secret.to_bytes()))?;
                file.sync_all()?;
                SigningKey::from(secret)
            }
            Err(error) => return Err(error),
        };
        Ok(Self { key, subject })
    }

    /// The public key browsers subscribe with (base64url, uncompressed).
    pub fn public_key(&self) -> String {
        b64_encode(self.key.verifying_key().to_encoded_point(false).as_bytes())
    }
}

/// Checks a subscription a browser sent: an https endpoint (plain http
/// only on loopback, for tests), a P-256 key and a 16-byte auth secret.
pub fn check_subscription(endpoint: &str, p256dh: &str, auth: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(endpoint).map_err(|_| "the endpoint is not a URL".to_owned())?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err("the endpoint must be an https URL".into());
    }
    let key = b64(p256dh).map_err(|e| e.to_string())?;
    browser_key(&key).map_err(|e| e.to_string())?;
    if b64(auth).map(|a| a.len()) != Ok(16) {
        return Err("the auth secret must be 16 bytes, base64url".into());
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The encrypted body of a notice for one subscription.
fn sealed(notice: &Notice, sub: &PushSubscription) -> Result<Vec<u8>, PushCryptoError> {
    let payload = serde_json::json!({
        "title": notice.title,
        "body": notice.text,
        "url": format!("/{}", notice.screen),
    });
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| PushCryptoError::Cipher)?;
    let secret = random_secret().map_err(|_| PushCryptoError::Cipher)?;
    encrypt(
        payload.to_string().as_bytes(),
        &b64(&sub.p256dh)?,
        &b64(&sub.auth)?,
        &secret,
        &salt,
    )
}

/// Sends a notice to every subscribed browser; a subscription the push
/// service says is gone (404, 410) is dropped.
pub async fn push_all(client: &reqwest::Client, store: &Store, vapid: &Vapid, notice: &Notice) {
    let subscriptions = match store.push_subscriptions().await {
        Ok(subscriptions) => subscriptions,
        Err(error) => {
            tracing::warn!(%error, "cannot read the push subscriptions");
            return;
        }
    };
    for sub in subscriptions {
        let body = match sealed(notice, &sub) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, device = %sub.token_name, "cannot encrypt a push");
                continue;
            }
        };
        let Ok(authorization) =
            vapid_authorization(&vapid.key, &sub.endpoint, &vapid.subject, unix_now())
        else {
            continue;
        };
        let urgency = if notice.title.starts_with("Approval") {
            "high"
        } else {
            "normal"
        };
        let sent = client
            .post(&sub.endpoint)
            .header("TTL", "86400")
            .header("Urgency", urgency)
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", authorization)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if matches!(response.status().as_u16(), 404 | 410) => {
                let (endpoint, status) = (sub.endpoint.clone(), response.status().as_u16());
                let _ = store
                    .write(move |tx| tx.drop_gone_push_subscription(&endpoint, status))
                    .await;
                tracing::info!(device = %sub.token_name, "a push subscription is gone; dropped it");
            }
            Ok(response) if !response.status().is_success() => {
                tracing::warn!(status = %response.status(), device = %sub.token_name, "the push service refused a notice");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, device = %sub.token_name, "the push service cannot be reached")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_checked() {
        let key = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        let auth = "BTBZMqHH6r4Tts7J_aSIgg";
        assert!(check_subscription("https://push.example/x", key, auth).is_ok());
        assert!(check_subscription("http://127.0.0.1:9/x", key, auth).is_ok());
        assert!(
            check_subscription("http://push.example/x", key, auth)
                .unwrap_err()
                .contains("https")
        );
        assert!(check_subscription("https://push.example/x", "AAAA", auth).is_err());
        assert!(
            check_subscription("https://push.example/x", key, "AAAA")
                .unwrap_err()
                .contains("16 bytes")
        );
    }

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = Vapid::load_or_create(dir.path(), "mailto:x@y".into()).unwrap();
        let again = Vapid::load_or_create(dir.path(), "mailto:x@y".into()).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        let mode = std::fs::metadata(dir.path().join(VAPID_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            !format!("{first:?}").contains(
                &std::fs::read_to_string(dir.path().join(VAPID_KEY_FILE))
                    .unwrap()
                    .trim()
                    .to_owned()
            )
        );
    }
}
