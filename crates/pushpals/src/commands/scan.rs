//! `scan`, `findings`, `dismiss`, `checks`.

use super::print_json;
use crate::client::Client;
use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};
use std::process::ExitCode;

fn print_grouped(findings: &[Value]) {
    if findings.is_empty() {
        say!("Nothing open.");
        return;
    }
    let mut kind = "";
    for finding in findings {
        let this = finding["kind"].as_str().unwrap_or("?");
        if this != kind {
            say!("\n{this}:");
            kind = this;
        }
        let place = match (finding["file"].as_str(), finding["line"].as_u64()) {
            (Some(file), Some(line)) => format!("{file}:{line}"),
            (Some(file), None) => file.to_owned(),
            _ => "(repository)".to_owned(),
        };
        say!(
            "  [{}] {}  {}  ({})",
            finding["severity"].as_str().unwrap_or("?"),
            place,
            finding["title"].as_str().unwrap_or(""),
            finding["fingerprint"].as_str().unwrap_or("")
        );
    }
}

/// `scan`.
pub async fn scan(
    client: &Client,
    changed: bool,
    repo: Option<String>,
    json_out: bool,
) -> Result<ExitCode> {
    let path = if changed {
        format!(
            "/scan?changed=true{}",
            super::repos::repo_query('&', repo.as_deref())?
        )
    } else {
        format!("/scan{}", super::repos::repo_query('?', repo.as_deref())?)
    };
    let report = client.call_json(Method::POST, &path, &json!({})).await?;
    if json_out {
        print_json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    let changes = &report["changes"];
    say!(
        "Scanned {}: {} new, {} still open, {} fixed since the last scan.",
        report["commit"]
            .as_str()
            .unwrap_or("?")
            .get(..12)
            .unwrap_or("?"),
        changes["new"],
        changes["still_open"],
        changes["fixed"]
    );
    for note in report["notes"].as_array().into_iter().flatten() {
        say!("note: {}", note.as_str().unwrap_or_default());
    }
    print_grouped(
        report["open"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default(),
    );
    Ok(ExitCode::SUCCESS)
}

/// `findings`.
pub async fn findings(
    client: &Client,
    kind: Option<String>,
    all: bool,
    json_out: bool,
) -> Result<ExitCode> {
    let mut query = Vec::new();
    if let Some(kind) = &kind {
        query.push(format!("kind={kind}"));
    }
    if all {
        query.push("state=all".to_owned());
    }
    let path = if query.is_empty() {
        "/findings".to_owned()
    } else {
        format!("/findings?{}", query.join("&"))
    };
    let list = client.get_json(&path).await?;
    if json_out {
        print_json(&list);
    } else {
        print_grouped(
            list["findings"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `dismiss`.
pub async fn dismiss(client: &Client, fingerprint: &str, reason: &str) -> Result<ExitCode> {
    client
        .call_json(
            Method::POST,
            &format!("/findings/{fingerprint}/dismiss"),
            &json!({ "reason": reason }),
        )
        .await?;
    say!("Dismissed {fingerprint}.");
    Ok(ExitCode::SUCCESS)
}

/// `propose`.
pub async fn propose(client: &Client, findings: Vec<String>, json_out: bool) -> Result<ExitCode> {
    let task = client
        .call_json(Method::POST, "/proposals", &json!({ "findings": findings }))
        .await?;
    if json_out {
        print_json(&task);
    } else {
        let id = task["id"].as_str().unwrap_or("?");
        say!(
            "Proposed as task {id}: {}",
            task["title"].as_str().unwrap_or("")
        );
        say!("Follow it with: pushpals log {id} --follow");
    }
    Ok(ExitCode::SUCCESS)
}

/// `checks`: the repository's checks tried in the sandbox; exits 1 when
/// one does not pass.
pub async fn try_checks(client: &Client, repo: Option<String>, json: bool) -> Result<ExitCode> {
    let query = super::repos::repo_query('?', repo.as_deref())?;
    let tried = client
        .call_json(
            Method::POST,
            &format!("/checks/try{query}"),
            &serde_json::json!({}),
        )
        .await?;
    if json {
        print_json(&tried);
    } else {
        let checks = tried["checks"].as_array().cloned().unwrap_or_default();
        if checks.is_empty() {
            say!("No checks: add [checks] build, lint or test to pushpals.toml.");
        }
        for check in &checks {
            let name = check["name"].as_str().unwrap_or("?");
            let command = check["command"].as_str().unwrap_or("?");
            if check["passed"] == true {
                say!("ok    {name}: `{command}` passes in the sandbox");
                continue;
            }
            say!("FAIL  {name}: `{command}`");
            if let Some(why) = check["diagnosis"].as_str() {
                say!("      {why}");
            }
            for line in check["excerpt"]
                .as_str()
                .unwrap_or("")
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                say!("      | {line}");
            }
        }
    }
    Ok(if tried["passed"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
