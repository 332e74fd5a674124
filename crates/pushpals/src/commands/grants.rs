//! grant, revoke, grants, reload.

use super::print_json;
use crate::client::Client;
use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};
use std::process::ExitCode;

fn print_grants(grants: &Value) {
    let list = grants["grants"].as_array().cloned().unwrap_or_default();
    let repo = grants["repo"].as_str().unwrap_or("?");
    if list.is_empty() {
        say!("No grants in {repo}: every commit and push asks first.");
    } else {
        say!("Grants in {repo}:");
    }
    for grant in list {
        say!(
            "{}  (given by {} at {})",
            grant["kind"].as_str().unwrap_or("?"),
            grant["granted_by"].as_str().unwrap_or("?"),
            grant["granted_at"].as_str().unwrap_or("?")
        );
    }
}

/// `grant <kind>` / `revoke <kind>`.
pub async fn change(
    client: &Client,
    kind: &str,
    repo: Option<String>,
    give: bool,
) -> Result<ExitCode> {
    let method = if give { Method::PUT } else { Method::DELETE };
    let query = super::repos::repo_query('?', repo.as_deref())?;
    let grants = client
        .call_json(method, &format!("/grants/{kind}{query}"), &json!({}))
        .await?;
    print_grants(&grants);
    Ok(ExitCode::SUCCESS)
}

/// `grants`.
pub async fn list(client: &Client, repo: Option<String>, json: bool) -> Result<ExitCode> {
    let query = super::repos::repo_query('?', repo.as_deref())?;
    let grants = client.get_json(&format!("/grants{query}")).await?;
    if json {
        print_json(&grants);
    } else {
        print_grants(&grants);
    }
    Ok(ExitCode::SUCCESS)
}

/// `reload`: the server takes config.toml again.
pub async fn reload(client: &Client, json: bool) -> Result<ExitCode> {
    let reload = client
        .call_json(Method::POST, "/settings/reload", &serde_json::json!({}))
        .await?;
    if json {
        super::print_json(&reload);
        return Ok(ExitCode::SUCCESS);
    }
    let names = |key: &str| -> Vec<String> {
        reload[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let applied = names("applied");
    let restart = names("restart_needed");
    if applied.is_empty() && restart.is_empty() {
        say!("config.toml has not changed.");
    }
    if !applied.is_empty() {
        say!(
            "In force now (for what starts next): {}",
            applied.join(", ")
        );
    }
    if !restart.is_empty() {
        say!(
            "Changed, but needs a restart of `pushpals serve`: {}",
            restart.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
