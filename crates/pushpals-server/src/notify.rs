//! Notifications: when an approval is requested and when a task ends, an
//! ntfy-style webhook gets a POST and subscribed browsers a Web Push
//! (title, text, and a link to the companion's screen).

use crate::webpush::{Vapid, push_all};
use pushpals_core::payload::{ApprovalRequested, StateChanged};
use pushpals_core::visible::visible;
use pushpals_core::{Event, TaskState};
use pushpals_orchestrator::NotifySettings;
use pushpals_store::Store;
use tokio::sync::broadcast::error::RecvError;

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// A short title.
    pub title: String,
    /// The text.
    pub text: String,
    /// The companion's fragment to open (`#task/<id>`).
    pub screen: String,
}

/// The notification an event calls for, if any, naming the task by its
/// `title` when known; its texts have hidden characters made visible,
/// since a person decides on them.
pub fn notice_for(event: &Event, title: Option<&str>) -> Option<Notice> {
    notice_as_written(event, title).map(|notice| Notice {
        title: visible(&notice.title).into_owned(),
        text: visible(&notice.text).into_owned(),
        screen: notice.screen,
    })
}

fn notice_as_written(event: &Event, title: Option<&str>) -> Option<Notice> {
    let task = event.task_id.clone().unwrap_or_default();
    let named = match title {
        Some(title) => format!("\"{title}\""),
        None => format!("task {task}"),
    };
    if let Some(asked) = event.read::<ApprovalRequested>() {
        return Some(Notice {
            title: format!("Approval needed: {} for {named}", asked.action.as_str()),
            text: asked.summary,
            screen: format!("#task/{task}"),
        });
    }
    let changed = event.read::<StateChanged>()?;
    // An interrupted task was cut short by the server stopping, not ended
    // by its work: no notice.
    let ended = changed.to.is_final() && changed.to != TaskState::Interrupted;
    ended.then(|| Notice {
        title: format!(
            "{} {}",
            capitalised(&named),
            changed.to.as_str().replace('_', " ")
        ),
        text: changed.reason.unwrap_or_default(),
        screen: format!("#task/{task}"),
    })
}

/// A header value for any text: as it is when ASCII, else RFC 2047's
/// encoded word (which ntfy and mail tools read), since a header cannot
/// carry other bytes reliably.
fn header_text(text: &str) -> String {
    use base64::Engine as _;
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.to_owned();
    }
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Sends every notice to the webhook and to subscribed browsers until the
/// store closes. Failures are logged and never stop the server.
pub async fn run_notifier(store: Store, settings: NotifySettings, vapid: Option<Vapid>) {
    if settings.webhook.is_none() && vapid.is_none() {
        return;
    }
    let token = settings
        .webhook_token_env
        .as_deref()
        .and_then(|var| std::env::var(var).ok());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Ok(client) = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
    else {
        tracing::error!("cannot build the HTTP client for notifications");
        return;
    };
    let mut events = store.subscribe();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "notifications fell behind; some were skipped");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if !matches!(event.kind.as_str(), "approval_requested" | "state_changed") {
            continue;
        }
        let title = match event.task_id.as_deref().map(pushpals_core::TaskId::parse) {
            Some(Ok(id)) => store.task(&id).await.ok().map(|task| task.title),
            _ => None,
        };
        let Some(notice) = notice_for(&event, title.as_deref()) else {
            continue;
        };
        if let Some(url) = &settings.webhook {
            post_webhook(
                &client,
                url,
                token.as_deref(),
                settings.public_url.as_deref(),
                &notice,
            )
            .await;
        }
        if let Some(vapid) = &vapid {
            push_all(&client, &store, vapid, &notice).await;
        }
    }
}

async fn post_webhook(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    public_url: Option<&str>,
    notice: &Notice,
) {
    let mut request = client
        .post(url)
        .header("Title", header_text(&notice.title))
        .header("Tags", "pushpals")
        .body(if notice.text.is_empty() {
            notice.title.clone()
        } else {
            notice.text.clone()
        });
    if let Some(base) = public_url {
        request = request.header(
            "Click",
            format!("{}/{}", base.trim_end_matches('/'), notice.screen),
        );
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            tracing::warn!(status = %response.status(), "the notification webhook refused a notice");
        }
        Err(error) => tracing::warn!(%error, "the notification webhook cannot be reached"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, payload: serde_json::Value) -> Event {
        Event {
            id: 1,
            task_id: Some("t1".into()),
            time: String::new(),
            actor: "orchestrator".into(),
            kind: kind.into(),
            payload,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn approvals_and_endings_notify_and_nothing_else_does() {
        let asked = notice_for(
            &event(
                "approval_requested",
                json!({ "approval_id": 1, "action": "commit", "summary": "Commit 1 file" }),
            ),
            Some("Add a changelog"),
        )
        .unwrap();
        assert_eq!(
            asked.title,
            "Approval needed: commit for \"Add a changelog\""
        );
        assert_eq!(header_text("plain"), "plain");
        assert_eq!(header_text("Café"), "=?UTF-8?B?Q2Fmw6k=?=");
        assert_eq!(asked.screen, "#task/t1");
        let failed = notice_for(
            &event(
                "state_changed",
                json!({ "from": "checking", "to": "failed", "reason": "tests failed" }),
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            (failed.title.as_str(), failed.text.as_str()),
            ("Task t1 failed", "tests failed")
        );
        assert!(
            notice_for(
                &event(
                    "state_changed",
                    json!({ "from": "preparing", "to": "running" })
                ),
                None
            )
            .is_none()
        );
        assert!(
            notice_for(
                &event(
                    "state_changed",
                    json!({ "from": "running", "to": "interrupted" })
                ),
                None
            )
            .is_none(),
            "a stop of the server is not an ending to notify"
        );
        assert!(notice_for(&event("output", json!({ "text": "x" })), None).is_none());
    }

    #[test]
    fn a_spoofed_command_shows_its_bidi_controls() {
        let asked = notice_for(
            &event(
                "approval_requested",
                json!({ "approval_id": 2, "action": "command", "summary": "Run `python3 cleanup.py \u{202E}nur-yrd--`" }),
            ),
            Some("Clean \u{202E}pu"),
        )
        .unwrap();
        assert!(asked.title.contains("Clean \\u{202E}pu"), "{}", asked.title);
        assert_eq!(asked.text, "Run `python3 cleanup.py \\u{202E}nur-yrd--`");
    }
}
