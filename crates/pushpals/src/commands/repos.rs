//! `repo add | list | rm`.

use super::print_json;
use crate::cli::RepoAction;
use crate::client::Client;
use anyhow::{Result, bail};
use reqwest::Method;
use serde_json::json;
use std::process::ExitCode;

/// `?repo=NAME` (or `&repo=NAME` after `separator`), empty without a name;
/// a name that cannot name a repository is refused here.
pub(crate) fn repo_query(separator: char, repo: Option<&str>) -> Result<String> {
    match repo {
        None => Ok(String::new()),
        Some(name) if pushpals_orchestrator::valid_repo_name(name) => {
            Ok(format!("{separator}repo={name}"))
        }
        Some(name) => bail!(
            "{name:?} cannot name a repository (letters, digits, '.', '_', '-'); \
             `pushpals repo list` shows the names"
        ),
    }
}

/// Runs a `repo` action against the server.
pub async fn repo(client: &Client, action: RepoAction) -> Result<ExitCode> {
    match action {
        RepoAction::Add {
            source,
            name,
            branch,
            json,
        } => {
            // A local path is sent as the absolute path the server opens.
            let local = std::path::Path::new(&source);
            let source = if !source.contains("://") && local.exists() {
                std::fs::canonicalize(local)?.to_string_lossy().into_owned()
            } else {
                source
            };
            let added = client
                .call_json(
                    Method::POST,
                    "/repos",
                    &json!({ "source": source, "name": name, "branch": branch }),
                )
                .await?;
            if json {
                print_json(&added);
            } else {
                say!(
                    "Added {} ({}).",
                    added["name"].as_str().unwrap_or("?"),
                    added["origin"]
                        .as_str()
                        .unwrap_or(added["path"].as_str().unwrap_or("?"))
                );
                if added["credential_in_memory"].as_bool() == Some(true) {
                    say!(
                        "The token in the URL is kept in the server's memory only: after a restart, \
                         fetches use the server user's git credential helper."
                    );
                }
            }
        }
        RepoAction::List { json } => {
            let listed = client.get_json("/repos").await?;
            if json {
                print_json(&listed);
                return Ok(ExitCode::SUCCESS);
            }
            let repos = listed["repos"].as_array().cloned().unwrap_or_default();
            if repos.is_empty() {
                say!("No repositories yet: `pushpals repo add URL|PATH`.");
            }
            for repo in repos {
                let text = |key: &str| repo[key].as_str().unwrap_or("-").to_owned();
                say!(
                    "{}  {}  base {}  last fetch {}  tasks {} ({} busy)  findings {}{}",
                    text("name"),
                    repo["origin"].as_str().unwrap_or(&text("path")),
                    text("branch"),
                    text("last_fetch"),
                    repo["tasks"],
                    repo["busy_tasks"],
                    repo["open_findings"],
                    repo["problem"]
                        .as_str()
                        .map(|p| format!("  PROBLEM: {p}"))
                        .unwrap_or_default()
                );
            }
        }
        RepoAction::Rm { name } => {
            let removed = client
                .call_json(Method::DELETE, &format!("/repos/{name}"), &json!({}))
                .await?;
            say!(
                "Removed {}{}.",
                name,
                if removed["deleted_clone"].as_bool() == Some(true) {
                    " and deleted its clone"
                } else {
                    " (its checkout is left as it is)"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
