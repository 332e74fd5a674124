//! `gc` and `du`.

use super::print_json;
use crate::client::Client;
use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};
use std::process::ExitCode;

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// `gc`.
pub async fn gc(
    client: &Client,
    older_than_days: Option<u64>,
    dry_run: bool,
    json: bool,
) -> Result<ExitCode> {
    let report = client
        .call_json(
            Method::POST,
            "/gc",
            &json!({ "older_than_days": older_than_days, "dry_run": dry_run }),
        )
        .await?;
    if json {
        print_json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "Would remove" } else { "Removed" };
    let worktrees = report["worktrees"].as_array().cloned().unwrap_or_default();
    for entry in &worktrees {
        say!(
            "{verb} the worktree of task {} ({})",
            entry[0].as_str().unwrap_or("?"),
            human(entry[1].as_u64().unwrap_or(0))
        );
    }
    for branch in report["branches"].as_array().into_iter().flatten() {
        say!("{verb} merged branch {}", branch.as_str().unwrap_or("?"));
    }
    let caches = report["caches"].as_array().cloned().unwrap_or_default();
    for entry in &caches {
        say!(
            "{verb} the warm cache {} ({}): its inputs changed",
            entry[0].as_str().unwrap_or("?"),
            human(entry[1].as_u64().unwrap_or(0))
        );
    }
    say!(
        "{} {} worktree(s), {} branch(es), {} cache(s); {} freed",
        if dry_run { "Would free:" } else { "Done:" },
        worktrees.len(),
        report["branches"].as_array().map_or(0, Vec::len),
        caches.len(),
        human(report["bytes_freed"].as_u64().unwrap_or(0))
    );
    Ok(ExitCode::SUCCESS)
}

/// `du`.
pub async fn du(client: &Client, json: bool) -> Result<ExitCode> {
    let report: Value = client.get_json("/du").await?;
    if json {
        print_json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    let bytes = |key: &str| human(report[key].as_u64().unwrap_or(0));
    say!(
        "database   {} (of which blobs {})",
        bytes("database_bytes"),
        bytes("blob_bytes")
    );
    say!("worktrees  {}", bytes("worktree_bytes"));
    for entry in report["tasks"].as_array().into_iter().flatten() {
        say!(
            "  {:<10} {}",
            entry[0].as_str().unwrap_or("?"),
            human(entry[1].as_u64().unwrap_or(0))
        );
    }
    say!("caches     {}", bytes("cache_bytes"));
    for cache in report["caches"].as_array().into_iter().flatten() {
        say!(
            "  {:<10} {}{}",
            cache["key"]
                .as_str()
                .unwrap_or("?")
                .get(..10)
                .unwrap_or("?"),
            human(cache["bytes"].as_u64().unwrap_or(0)),
            if cache["current"] == true {
                " (current)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
