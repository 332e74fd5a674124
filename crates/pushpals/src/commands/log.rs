//! `log <task> [--follow]`.

use crate::client::Client;
use crate::render;
use anyhow::{Result, bail};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;

/// States after which nothing happens without the person: following stops.
const RESTING_STATES: &[&str] = &[
    "waiting",
    "awaiting_approval",
    "committed",
    "no_changes",
    "failed",
    "cancelled",
    "rejected",
    "interrupted",
];

/// How often a dropped stream is reopened before giving up.
const RECONNECTS: u32 = 5;

/// States in which the task's work did not land: following ends with a
/// failure exit code, so scripts can tell.
const UNSUCCESSFUL_STATES: &[&str] = &["failed", "cancelled", "rejected", "interrupted"];

/// Prints the task's events; with `follow`, streams new ones until the task
/// rests (waits for an approval or ended), and exits with 1 when it ended
/// without its work landing (failed, cancelled, rejected, interrupted).
pub async fn log(client: &Client, task: &str, follow: bool, json: bool) -> Result<ExitCode> {
    let mut last_id = 0i64;
    loop {
        let page = client
            .get_json(&format!("/tasks/{task}/events?after={last_id}&limit=1000"))
            .await?;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for event in &events {
            print_event(event, json)?;
            last_id = event["id"].as_i64().unwrap_or(last_id);
        }
        if events.len() < 1000 {
            break;
        }
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let view = client.get_json(&format!("/tasks/{task}")).await?;
    if is_resting(view["task"]["state"].as_str()) {
        return Ok(exit_for(view["task"]["state"].as_str()));
    }
    let mut failures = 0;
    loop {
        let request = client
            .request(Method::GET, &format!("/events?task={task}&after={last_id}"))
            .header("accept", "text/event-stream")
            .header("last-event-id", last_id.to_string());
        let response = client.send(request).await?;
        let mut stream = response.bytes_stream().eventsource();
        while let Some(item) = stream.next().await {
            let Ok(message) = item else { break };
            let Ok(event) = serde_json::from_str::<Value>(&message.data) else {
                continue;
            };
            failures = 0;
            print_event(&event, json)?;
            last_id = event["id"].as_i64().unwrap_or(last_id);
            let to = event["payload"]["to"].as_str();
            if event["kind"] == "state_changed" && is_resting(to) {
                return Ok(exit_for(to));
            }
        }
        failures += 1;
        if failures > RECONNECTS {
            bail!("the event stream keeps dropping; run `pushpals log {task} --follow` again");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(failures))).await;
    }
}

pub(crate) fn exit_for(state: Option<&str>) -> ExitCode {
    if state.is_some_and(|s| UNSUCCESSFUL_STATES.contains(&s)) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

pub(crate) fn is_resting(state: Option<&str>) -> bool {
    state.is_some_and(|s| RESTING_STATES.contains(&s))
}

fn print_event(event: &Value, json: bool) -> Result<()> {
    if json {
        crate::terminal::write_raw(&format!("{event}\n"));
    } else {
        say_part!("{}", render::event_line(event));
    }
    Ok(())
}
