//! Human-readable output: the task table and a task's detail; an event's
//! line is in `event_lines`.

pub use crate::event_lines::event_line;

use serde_json::Value;

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}

/// Model cost of a task, `-` when it made no model call.
fn cost(task: &Value) -> String {
    let usage = &task["usage"];
    match usage["model_calls"].as_u64() {
        Some(calls) if calls > 0 => format!(
            "${:.4}",
            usage["cost_micros"].as_u64().unwrap_or(0) as f64 / 1_000_000.0
        ),
        _ => "-".into(),
    }
}

/// Now, for elapsed times.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// How long ago an RFC 3339 time was, as `1h02m`, `3m05s` or `12s`.
fn elapsed_since(rfc3339: &str, now: time::OffsetDateTime) -> Option<String> {
    let then = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    let seconds = (now - then).whole_seconds().max(0);
    Some(words(u64::try_from(seconds).unwrap_or(0)))
}

use pushpals_core::timestamp::duration_words as words;

/// States in which a task is at work (its elapsed time is shown).
const AT_WORK: &[&str] = &["queued", "preparing", "running", "waiting", "checking"];

/// One line per task: number, id, state (with the time in it while the
/// task works), model cost, what it waits for, title; and the repository,
/// when the tasks are in more than one.
pub fn task_table(
    tasks: &[Value],
    waits: &std::collections::HashMap<String, Vec<String>>,
    now: time::OffsetDateTime,
) -> String {
    if tasks.is_empty() {
        return "No tasks yet. Create one with: pushpals task \"<title>\" --run \"<command>\" \
                (or --agent \"<prompt>\"), or tell `pushpals chat` what to change\n"
            .into();
    }
    let repos: std::collections::BTreeSet<&str> = tasks.iter().map(|t| text(t, "repo")).collect();
    let repo_width = if repos.len() > 1 {
        repos
            .iter()
            .map(|r| r.chars().count())
            .max()
            .unwrap_or(0)
            .max(4)
            + 1
    } else {
        0
    };
    let repo_cell = |name: &str| {
        if repo_width == 0 {
            String::new()
        } else {
            format!("{name:<repo_width$}")
        }
    };
    let mut out = format!(
        "{:>4} {:<10} {}{:<18} {:>7} {:>9} {:<10} {}\n",
        "#",
        "TASK",
        repo_cell("REPO"),
        "STATE",
        "FOR",
        "COST",
        "WAITS FOR",
        "TITLE"
    );
    for task in tasks {
        let state = text(task, "state");
        let elapsed = if AT_WORK.contains(&state) {
            elapsed_since(text(task, "updated_at"), now).unwrap_or_default()
        } else {
            String::new()
        };
        let waiting = waits
            .get(text(task, "id"))
            .map(|actions| actions.join(","))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:>4} {:<10} {}{:<18} {:>7} {:>9} {:<10} {}\n",
            task["seq"].as_u64().unwrap_or(0),
            text(task, "id"),
            repo_cell(text(task, "repo")),
            state,
            elapsed,
            cost(task),
            waiting,
            text(task, "title")
        ));
    }
    out
}

/// A task in detail, with its approvals.
pub fn task_detail(view: &Value) -> String {
    let task = &view["task"];
    let mut out = format!("Task {}: {}\n", text(task, "id"), text(task, "title"));
    for (label, key) in [
        ("state", "state"),
        ("branch", "branch"),
        ("command", "command"),
        ("base", "base_commit"),
        ("worktree", "worktree_path"),
        ("commit", "commit_sha"),
        ("reason", "reason"),
    ] {
        if let Some(value) = task[key].as_str() {
            out.push_str(&format!("  {label:<9} {value}\n"));
        }
    }
    let progress = &view["progress"];
    if let Some(seconds) = progress["at_work_secs"].as_u64() {
        out.push_str(&format!("  {:<9} {}\n", "at work", words(seconds)));
    }
    if let Some(step) = progress["last_step"].as_str() {
        out.push_str(&format!("  {:<9} {step}\n", "last step"));
    }
    if let Some(line) = progress["last_line"].as_str() {
        out.push_str(&format!("  {:<9} {line}\n", "output"));
    }
    if let Some(prompt) = task["agent"]["prompt"].as_str() {
        out.push_str(&format!("  {:<9} {prompt}\n", "prompt"));
    }
    let usage = &task["usage"];
    if usage["model_calls"].as_u64().unwrap_or(0) > 0 {
        out.push_str(&format!(
            "  {:<9} {} calls, {} tokens in, {} out, {}\n",
            "model",
            usage["model_calls"],
            usage["input_tokens"],
            usage["output_tokens"],
            cost(task)
        ));
    }
    for approval in view["approvals"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  approval #{} {} ({}): {}\n",
            approval["id"],
            text(approval, "action"),
            text(approval, "state"),
            text(approval, "summary")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_repositories_only_when_there_are_several() {
        let task = |seq: u64, repo: &str| {
            serde_json::json!({ "seq": seq, "id": format!("t{seq}"), "repo": repo,
                "state": "committed", "title": format!("in {repo}"), "usage": {} })
        };
        let now = time::OffsetDateTime::now_utc();
        let waits = std::collections::HashMap::new();
        let one = task_table(&[task(1, "app"), task(2, "app")], &waits, now);
        assert!(!one.contains("REPO"), "{one}");
        let two = task_table(&[task(1, "app"), task(2, "tool-chain")], &waits, now);
        let lines: Vec<&str> = two.lines().collect();
        assert!(lines[0].contains(" REPO "), "{two}");
        assert!(lines[1].contains(" app "), "{two}");
        assert!(lines[2].contains(" tool-chain "), "{two}");
        // The columns stay aligned: STATE starts at one place on every line.
        let state_at = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][state_at..state_at + 9], "committed");
        assert_eq!(&lines[2][state_at..state_at + 9], "committed");
    }
}
