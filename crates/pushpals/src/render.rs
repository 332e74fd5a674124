//! Human-readable output.

use pushpals_core::payload::{
    AgentFinished, ApprovalDecided, ApprovalRequested, BaseFetchFailed, BaseFetched,
    CommandFinished, CommandStarted, MergeDone, PolicyDecision, PrOpened, PushBlocked, Pushed,
    StateChanged, read_json,
};
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

/// The line of an event whose payload has a type (`payload.rs` in the
/// core crate), without its `#id ── ` prefix.
fn typed_line(event: &Value) -> Option<String> {
    if let Some(changed) = read_json::<StateChanged>(event) {
        return Some(format!(
            "{} → {}{}",
            changed.from,
            changed.to,
            changed
                .reason
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    if let Some(judged) = read_json::<PolicyDecision>(event) {
        if judged.preapproved {
            return Some(format!(
                "[{}] approved with the task: {}",
                judged.step,
                judged.command.unwrap_or_default()
            ));
        }
        let parts: String = judged
            .findings
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["decision"] != "allow")
            .map(|f| format!(" — {}: {}", text(f, "part"), text(f, "reason")))
            .collect();
        let why = judged
            .reason
            .filter(|_| parts.is_empty())
            .map(|r| format!(" — {r}"))
            .unwrap_or_default();
        let what = judged.command.or(judged.tool).unwrap_or_default();
        return Some(format!(
            "[{}] policy: {} {what}{parts}{why}",
            judged.step,
            judged.decision.unwrap_or_default()
        ));
    }
    if let Some(started) = read_json::<CommandStarted>(event) {
        return Some(format!("[{}] $ {}", started.step, started.command));
    }
    if let Some(finished) = read_json::<CommandFinished>(event) {
        return Some(format!(
            "[{}] {}{}",
            finished.step,
            finished.outcome.or(finished.error).unwrap_or_default(),
            finished
                .duration_ms
                .map(|ms| format!(" in {ms} ms"))
                .unwrap_or_default()
        ));
    }
    if let Some(asked) = read_json::<ApprovalRequested>(event) {
        return Some(format!(
            "approval #{} ({}) requested: {}",
            asked.approval_id,
            asked.action.as_str(),
            asked.summary
        ));
    }
    if let Some(decided) = read_json::<ApprovalDecided>(event) {
        return Some(format!(
            "approval #{} ({}) {} by {}{}",
            decided.approval_id,
            decided.action.as_str(),
            decided.decision.as_str(),
            decided.decided_by,
            decided.reason.map(|r| format!(": {r}")).unwrap_or_default()
        ));
    }
    if let Some(line) = delivery_line(event) {
        return Some(line);
    }
    if let Some(finished) = read_json::<AgentFinished>(event) {
        return Some(format!("the agent finished: {}", finished.summary));
    }
    if let Some(fetched) = read_json::<BaseFetched>(event) {
        return Some(format!(
            "starts from {} ({})",
            fetched.start_commit.get(..12).unwrap_or_default(),
            fetched.why
        ));
    }
    let failed = read_json::<BaseFetchFailed>(event)?;
    let next = match (failed.retry_in_secs, &failed.start_commit) {
        (Some(secs), _) => format!("; trying again in {secs} s"),
        (None, Some(start)) => format!(
            "; starts from {} ({})",
            start.get(..12).unwrap_or_default(),
            failed.why.unwrap_or_default()
        ),
        _ => String::new(),
    };
    Some(format!(
        "cannot fetch {}/{}: {}{next}",
        failed.remote, failed.branch, failed.error
    ))
}

/// The line of a push, a pull request, a merge or a stopped push.
fn delivery_line(event: &Value) -> Option<String> {
    let short = |sha: &str| sha.get(..12).unwrap_or(sha).to_owned();
    if let Some(pushed) = read_json::<Pushed>(event) {
        return Some(format!(
            "pushed {} to {} at {}{}{}",
            pushed.branch,
            pushed.remote,
            short(&pushed.sha),
            pushed
                .rebased_onto
                .map(|base| format!(", rebased onto {}", short(&base)))
                .unwrap_or_default(),
            pushed
                .updates_pull_request
                .map(|url| format!("; updates {url}"))
                .unwrap_or_default()
        ));
    }
    if let Some(opened) = read_json::<PrOpened>(event) {
        return Some(format!(
            "pull request #{} opened on {}: {}",
            opened.number, opened.forge, opened.url
        ));
    }
    if let Some(merged) = read_json::<MergeDone>(event) {
        return Some(format!(
            "merged into {} ({}) at {}",
            merged.base_branch,
            merged.kind,
            short(&merged.head)
        ));
    }
    read_json::<PushBlocked>(event).map(|blocked| format!("push stopped: {}", blocked.reason))
}

/// One event for a person; `output` events print their text as it came.
pub fn event_line(event: &Value) -> String {
    let payload = &event["payload"];
    let id = &event["id"];
    if let Some(line) = typed_line(event) {
        return format!("#{id} ── {line}\n");
    }
    match text(event, "kind") {
        "output" => text(payload, "text").to_owned(),
        kind => format!("#{id} ── {kind} {}\n", compact(payload)),
    }
}

fn compact(payload: &Value) -> String {
    let text = payload.to_string();
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn events_read_as_steps() {
        let changed = json!({"id": 4, "kind": "state_changed", "payload": {"from": "running", "to": "failed", "reason": "boom"}});
        assert_eq!(event_line(&changed), "#4 ── running → failed (boom)\n");
        let output = json!({"id": 5, "kind": "output", "payload": {"text": "hello\n"}});
        assert_eq!(event_line(&output), "hello\n");
        let long = json!({"id": 6, "kind": "diff", "payload": {"x": "é".repeat(400)}});
        assert!(event_line(&long).ends_with("…\n"));
        let withdrawn = json!({"id": 9, "kind": "approval_decided", "payload": {"approval_id": 1, "action": "command", "decision": "withdrawn", "decided_by": "orchestrator", "reason": "the server stopped"}});
        assert_eq!(
            event_line(&withdrawn),
            "#9 ── approval #1 (command) withdrawn by orchestrator: the server stopped\n"
        );
        let pushed = json!({"id": 10, "kind": "push", "payload": {"remote": "origin", "branch": "pushpals/ab", "sha": "0123456789abcdef", "rebased_onto": null, "updates_pull_request": null}});
        assert_eq!(
            event_line(&pushed),
            "#10 ── pushed pushpals/ab to origin at 0123456789ab\n"
        );
        let opened = json!({"id": 11, "kind": "pr_opened", "payload": {"forge": "github", "url": "https://forge.test/o/r/pull/3", "number": 3}});
        assert_eq!(
            event_line(&opened),
            "#11 ── pull request #3 opened on github: https://forge.test/o/r/pull/3\n"
        );
        let waiting = json!({"id": 7, "kind": "base_fetch_failed", "payload": {"remote": "origin", "branch": "main", "error": "no route", "retry_in_secs": 10}});
        assert_eq!(
            event_line(&waiting),
            "#7 ── cannot fetch origin/main: no route; trying again in 10 s\n"
        );
        let fetched = json!({"id": 8, "kind": "base_fetched", "payload": {"remote": "origin", "branch": "main", "fetched": "0123456789abcdef", "head": "fedcba", "start_commit": "0123456789abcdef", "why": "the remote base is ahead of the local HEAD"}});
        assert_eq!(
            event_line(&fetched),
            "#8 ── starts from 0123456789ab (the remote base is ahead of the local HEAD)\n"
        );
    }
}
