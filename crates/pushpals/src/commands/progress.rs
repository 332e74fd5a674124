//! `task --wait`: one progress line while the task works (its state, the
//! time in it, its latest output line), rewritten in place on a terminal
//! and printed once per change otherwise; it ends when the task waits for
//! the person or ended, with the exit code `log --follow` gives.

use super::log::{exit_for, is_resting};
use crate::client::Client;
use anyhow::Result;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Follows task `id` until it rests.
pub async fn wait(client: &Client, id: &str) -> Result<ExitCode> {
    let terminal = std::io::stdout().is_terminal();
    let mut last_shown = String::new();
    loop {
        let view = client.get_json(&format!("/tasks/{id}")).await?;
        let state = view["task"]["state"].as_str().unwrap_or("?").to_owned();
        let line = progress_line(&view);
        if is_resting(Some(&state)) {
            if terminal {
                crate::terminal::write_raw("\r\u{1b}[K");
            }
            say!("{line}");
            if let Some(reason) = view["task"]["reason"].as_str() {
                say!("  {reason}");
            }
            return Ok(exit_for(Some(&state)));
        }
        if terminal {
            // The line is neutralised first: only our own \r and erase act.
            let shown: String = crate::terminal::neutralised(&line)
                .chars()
                .take(120)
                .collect();
            crate::terminal::write_raw(&format!("\r\u{1b}[K{shown}"));
        } else if line != last_shown {
            say!("{line}");
        }
        last_shown = line;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `[running 1m05s] cargo test: test parser::x ... ok`.
fn progress_line(view: &serde_json::Value) -> String {
    let task = &view["task"];
    let progress = &view["progress"];
    let mut line = format!("[{}", task["state"].as_str().unwrap_or("?"));
    if let Some(seconds) = progress["at_work_secs"].as_u64() {
        line.push_str(&format!(
            " {}",
            pushpals_core::timestamp::duration_words(seconds)
        ));
    }
    line.push(']');
    if let Some(step) = progress["last_step"].as_str() {
        line.push_str(&format!(" {step}"));
    }
    if let Some(output) = progress["last_line"].as_str() {
        line.push_str(&format!(": {output}"));
    }
    line
}
