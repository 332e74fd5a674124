//! One line per event for a person: the kinds with a payload type are
//! worded (state changes, policy, commands, approvals, base fetches, the
//! task's worktree, warm caches, diff and commit, pushes, pull requests and
//! merges);
//! any other kind shows its payload, cut.

use pushpals_core::payload::{
    AgentFinished, ApprovalDecided, ApprovalRequested, BaseFetchFailed, BaseFetched, CacheBuilt,
    CacheUsed, CommandFinished, CommandStarted, Commit, DiffRecorded, MergeDone, PolicyDecision,
    PrOpened, PushBlocked, Pushed, StateChanged, TaskCreated, TaskPlaced, WorkerLost,
    WorktreeCreated, read_json,
};
use serde_json::Value;

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
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
    if let Some(line) = delivery_line(event).or_else(|| work_line(event)) {
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

/// The line of a task's creation, its worktree, its diff or its commit.
fn work_line(event: &Value) -> Option<String> {
    if let Some(created) = read_json::<TaskCreated>(event) {
        let what = created
            .command
            .map(|command| format!(": $ {command}"))
            .unwrap_or_default();
        let repo = created
            .repo
            .map(|repo| format!(" in {repo}"))
            .unwrap_or_default();
        return Some(format!("task created{repo}, {}{what}", created.title));
    }
    if let Some(made) = read_json::<WorktreeCreated>(event) {
        return Some(format!(
            "worktree {} on {} from {}",
            made.path,
            made.branch,
            made.base_commit.get(..12).unwrap_or(&made.base_commit)
        ));
    }
    if let Some(diff) = read_json::<DiffRecorded>(event) {
        let count = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
        let files: Vec<String> = diff
            .files
            .iter()
            .map(|f| format!("{} (+{} −{})", f.path, count(f.added), count(f.removed)))
            .collect();
        return Some(format!(
            "diff: {} file{}: {}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            files.join(", ")
        ));
    }
    if let Some(placed) = read_json::<TaskPlaced>(event) {
        let needs = if placed.needs.is_empty() {
            String::new()
        } else {
            format!(" (needs {})", placed.needs.join(", "))
        };
        return Some(match placed.worker {
            Some(worker) => format!(
                "runs on worker {worker}{needs}, after {:.1} s waiting for one",
                placed.waited_ms as f64 / 1000.0
            ),
            None => format!("runs on this machine{needs}"),
        });
    }
    if let Some(lost) = read_json::<WorkerLost>(event) {
        return Some(format!("worker {} lost: {}", lost.worker, lost.reason));
    }
    if let Some(built) = read_json::<CacheBuilt>(event) {
        return Some(format!(
            "warm cache {} built at {}: {} files, {} (took {:.1} s)",
            built.key.get(..12).unwrap_or(&built.key),
            built.base_commit.get(..12).unwrap_or(&built.base_commit),
            built.files,
            megabytes(built.bytes),
            built.took_ms as f64 / 1000.0
        ));
    }
    if let Some(used) = read_json::<CacheUsed>(event) {
        return Some(format!(
            "warm cache {} given ({}): {} files, {}",
            used.key.get(..12).unwrap_or(&used.key),
            used.method,
            used.files,
            megabytes(used.bytes)
        ));
    }
    read_json::<Commit>(event).map(|commit| {
        format!(
            "committed {} on {}: {}{}",
            commit.sha.get(..12).unwrap_or(&commit.sha),
            commit.branch,
            commit.message.lines().next().unwrap_or_default(),
            if commit.recovered {
                " (recorded after a restart)"
            } else {
                ""
            }
        )
    })
}

/// `bytes` in megabytes, one decimal.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
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
        let diff = json!({"id": 13, "kind": "diff", "payload": {"bytes": 123, "diff_blob": "b2", "files": [{"added": 1, "path": "NOTE.md", "removed": 0}, {"added": null, "path": "logo.png", "removed": null}]}});
        assert_eq!(
            event_line(&diff),
            "#13 ── diff: 2 files: NOTE.md (+1 −0), logo.png (+? −?)\n"
        );
        let created = json!({"id": 4, "kind": "task_created", "payload": {"title": "Add a note", "repo": "itoa", "command": "echo note > NOTE.md", "agent": null, "branch": "pushpals/ab", "trace_id": "cd", "sandbox": {}}});
        assert_eq!(
            event_line(&created),
            "#4 ── task created in itoa, Add a note: $ echo note > NOTE.md\n"
        );
        let waiting = json!({"id": 7, "kind": "base_fetch_failed", "payload": {"remote": "origin", "branch": "main", "error": "no route", "retry_in_secs": 10}});
        assert_eq!(
            event_line(&waiting),
            "#7 ── cannot fetch origin/main: no route; trying again in 10 s\n"
        );
        let used = json!({"id": 12, "kind": "cache_used", "payload": {"key": "4145198b56ffc5a4", "built_at_commit": "f656", "entries": 4, "files": 3191, "bytes": 37237448, "method": "worker py-1", "lock_files": {}, "took_ms": 40}});
        assert_eq!(
            event_line(&used),
            "#12 ── warm cache 4145198b56ff given (worker py-1): 3191 files, 37.2 MB\n"
        );
        let built = json!({"id": 11, "kind": "cache_built", "payload": {"key": "4145198b56ffc5a4", "base_commit": "f65609f8addaaea1", "inputs": {}, "entries": [".venv"], "files": 3191, "bytes": 37237448, "sha256": "ab", "warm_checks": [], "took_ms": 31200}});
        assert_eq!(
            event_line(&built),
            "#11 ── warm cache 4145198b56ff built at f65609f8adda: 3191 files, 37.2 MB (took 31.2 s)\n"
        );
        let fetched = json!({"id": 8, "kind": "base_fetched", "payload": {"remote": "origin", "branch": "main", "fetched": "0123456789abcdef", "head": "fedcba", "start_commit": "0123456789abcdef", "why": "the remote base is ahead of the local HEAD"}});
        assert_eq!(
            event_line(&fetched),
            "#8 ── starts from 0123456789ab (the remote base is ahead of the local HEAD)\n"
        );
    }
}
