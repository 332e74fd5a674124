//! audit verify, audit export.

use super::print_json;
use crate::cli::AuditAction;
use crate::client::Client;
use anyhow::{Context, Result};
use reqwest::Method;
use std::io::Write;
use std::process::ExitCode;

/// `audit verify` exits 1 when the chain is broken; `audit export` writes
/// JSON lines.
pub async fn audit(client: &Client, action: AuditAction) -> Result<ExitCode> {
    match action {
        AuditAction::Verify { json } => {
            let report = client.get_json("/audit/verify").await?;
            let ok = report["ok"] == true;
            if json {
                print_json(&report);
            } else if ok {
                say!(
                    "The audit chain holds: {} events verified; head #{} {}",
                    report["checked"],
                    report["head_id"],
                    report["head_hash"].as_str().unwrap_or("(empty log)")
                );
            } else {
                say!(
                    "The audit chain is BROKEN at event #{}: {}",
                    report["first_broken_event"],
                    report["problem"].as_str().unwrap_or("")
                );
                say!(
                    "{} events before it verified; head #{} {}",
                    report["checked"],
                    report["head_id"],
                    report["head_hash"].as_str().unwrap_or("")
                );
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditAction::Export { output } => {
            let response = client
                .send(client.request(Method::GET, "/audit/export"))
                .await?;
            let body = response.bytes().await?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &body)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("Wrote {} events to {}", count_lines(&body), path.display());
                }
                None => std::io::stdout()
                    .write_all(&body)
                    .context("cannot write to standard output")?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn count_lines(body: &[u8]) -> usize {
    body.iter().filter(|b| **b == b'\n').count()
}
