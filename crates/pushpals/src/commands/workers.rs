//! `worker token` and `workers`: worker hosts, named and enrolled.

use super::print_json;
use crate::client::Client;
use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};
use std::process::ExitCode;

/// `worker token --name NAME [--labels a,b] [--ttl-secs N]`: names a worker
/// and prints its one-time enrolment token.
pub async fn token(
    client: &Client,
    name: &str,
    labels: &[String],
    ttl_secs: Option<u64>,
    json: bool,
) -> Result<ExitCode> {
    // `--labels ""` or a trailing comma leaves blanks: they are no labels.
    let labels: Vec<&str> = labels
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let mut body = json!({ "name": name, "labels": labels });
    if let Some(ttl) = ttl_secs {
        body["ttl_secs"] = json!(ttl);
    }
    let added = client.call_json(Method::POST, "/workers", &body).await?;
    if json {
        print_json(&added);
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = u64::try_from(added["expires_at"].as_i64().unwrap_or_default())
        .unwrap_or(0)
        .saturating_sub(now);
    say!(
        "Worker {} ({}): its enrolment token, shown once, good for one enrolment within {}:",
        added["worker"]["name"].as_str().unwrap_or_default(),
        labels_of(&added["worker"]),
        pushpals_core::timestamp::duration_words(left)
    );
    say!("{}", added["enrolment_token"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// A worker that has not reported for this long is shown as silent (it
/// reports every 10 s).
const SILENT_AFTER_SECS: u64 = 60;

/// Seconds since `at` (an RFC 3339 time), when it parses.
fn age_secs(at: Option<&str>) -> Option<u64> {
    let seen = pushpals_core::timestamp::parse(at?).ok()?;
    u64::try_from((time::OffsetDateTime::now_utc() - seen).whole_seconds()).ok()
}

/// How long ago `at` was, in words; `-` when never.
fn ago(at: Option<&str>) -> String {
    age_secs(at).map_or("-".into(), |secs| {
        format!("{} ago", pushpals_core::timestamp::duration_words(secs))
    })
}

/// The strings of a list, joined with commas, or `-` when there are none
/// (the tasks a worker runs now, the external agents it has).
fn listed(values: &Value) -> String {
    let items: Vec<&str> = values
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

/// A worker's state as a person reads it.
fn state_of(worker: &Value) -> &'static str {
    if worker["revoked_at"].is_string() {
        "revoked"
    } else if worker["enrolled_at"].is_string() {
        match age_secs(worker["last_seen"].as_str()) {
            Some(secs) if secs <= SILENT_AFTER_SECS => "reporting",
            _ => "silent",
        }
    } else {
        "waiting to enrol"
    }
}

fn labels_of(worker: &Value) -> String {
    let labels: Vec<&str> = worker["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if labels.is_empty() {
        "no labels".into()
    } else {
        labels.join(", ")
    }
}

/// `workers [--revoke NAME]`.
pub async fn workers(client: &Client, revoke: Option<&str>, json: bool) -> Result<ExitCode> {
    if let Some(name) = revoke {
        client
            .call_json(Method::DELETE, &format!("/workers/{name}"), &json!({}))
            .await?;
        say!("Revoked worker {name}: its token no longer works.");
        return Ok(ExitCode::SUCCESS);
    }
    let list = client.get_json("/workers").await?;
    if json {
        print_json(&list);
        return Ok(ExitCode::SUCCESS);
    }
    let workers = list["workers"].as_array().cloned().unwrap_or_default();
    if workers.is_empty() {
        say!("No workers yet: `pushpals worker token --name NAME --labels cargo,node` names one.");
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:<20} {:<20} {:>5} {:<10} {:<12} {:<10} {:>5} {:<10} AGENTS",
        "NAME",
        "LABELS",
        "CORES",
        "VERSION",
        "LAST SEEN",
        "RUNNING",
        "RUNS",
        "STATE"
    );
    for worker in &workers {
        let state = state_of(worker);
        say!(
            "{:<20} {:<20} {:>5} {:<10} {:<12} {:<10} {:>5} {state:<10} {}",
            worker["name"].as_str().unwrap_or_default(),
            labels_of(worker),
            worker["cores"]
                .as_u64()
                .map_or("-".to_owned(), |c| c.to_string()),
            worker["version"].as_str().unwrap_or("-"),
            ago(worker["last_seen"].as_str()),
            listed(&worker["running"]),
            worker["runs"].as_u64().unwrap_or(0),
            listed(&worker["agents"]),
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_stopped_reporting_shows_as_silent() {
        let at = |secs_ago: i64| {
            pushpals_core::timestamp::format_utc(
                time::OffsetDateTime::now_utc() - time::Duration::seconds(secs_ago),
            )
        };
        let enrolled = |seen: Option<String>| json!({ "enrolled_at": at(600), "last_seen": seen, "revoked_at": null });
        assert_eq!(state_of(&enrolled(Some(at(5)))), "reporting");
        assert_eq!(state_of(&enrolled(Some(at(120)))), "silent");
        assert_eq!(state_of(&enrolled(None)), "silent");
        assert_eq!(
            state_of(&json!({ "enrolled_at": null })),
            "waiting to enrol"
        );
        assert_eq!(
            state_of(&json!({ "enrolled_at": at(9), "revoked_at": at(1) })),
            "revoked"
        );
        assert_eq!(ago(Some(&at(125))), "2m05s ago");
        assert_eq!(ago(None), "-");
    }
}
