//! task, status, diff, approve, deny, cancel.

use super::print_json;
use crate::cli::{DecideArgs, TaskAction, TaskArgs};
use crate::client::Client;
use crate::render;
use anyhow::{Result, bail};
use reqwest::Method;
use serde_json::json;
use std::process::ExitCode;

/// `task "<title>" --run "<command>"` and `task rm <id>`.
pub async fn task(client: &Client, args: TaskArgs) -> Result<ExitCode> {
    if let Some(TaskAction::Rm { task, json }) = args.action {
        let removed = client
            .call_json(Method::DELETE, &format!("/tasks/{task}"), &json!({}))
            .await?;
        if json {
            print_json(&removed);
            return Ok(ExitCode::SUCCESS);
        }
        let kept = removed["state"] == "committed";
        say!(
            "Removed the worktree of task {task}{}",
            if kept {
                "; its branch keeps the commit"
            } else {
                " and its branch"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(title) = args.title else {
        bail!(
            "say what the task is: pushpals task \"<title>\" --run \"<command>\" (or --agent \"<prompt>\")"
        );
    };
    let mut body = json!({
        "title": title,
        "command": args.run,
        "approve_command": args.approve_run,
        "repo": args.repo,
    });
    if let Some(prompt) = args.agent {
        body["agent"] = json!({
            "prompt": prompt,
            "scope": args.scope,
            "depends_on": args.depends_on,
            "model": args.model,
            "external": args.external,
        });
    }
    let created = client.call_json(Method::POST, "/tasks", &body).await?;
    if args.json {
        print_json(&created);
    } else {
        let id = created["id"].as_str().unwrap_or("?");
        say!(
            "Created task {id} on branch {}",
            created["branch"].as_str().unwrap_or("?")
        );
        if args.wait {
            return super::progress::wait(client, id).await;
        }
        say!("Follow it with: pushpals log {id} --follow");
    }
    Ok(ExitCode::SUCCESS)
}

/// `status [task]`.
pub async fn status(client: &Client, task: Option<String>, json: bool) -> Result<ExitCode> {
    let value = match &task {
        Some(id) => client.get_json(&format!("/tasks/{id}")).await?,
        None => client.get_json("/tasks").await?,
    };
    if json {
        print_json(&value);
    } else if task.is_some() {
        say_part!("{}", render::task_detail(&value));
    } else {
        let tasks = value["tasks"].as_array().cloned().unwrap_or_default();
        // What each task waits for: its pending approvals' actions.
        let pending = client.get_json("/approvals?pending=true").await?;
        let mut waits: std::collections::HashMap<String, Vec<String>> = Default::default();
        for approval in pending["approvals"].as_array().into_iter().flatten() {
            if let (Some(task), Some(action)) =
                (approval["task_id"].as_str(), approval["action"].as_str())
            {
                waits
                    .entry(task.to_owned())
                    .or_default()
                    .push(action.to_owned());
            }
        }
        say_part!("{}", render::task_table(&tasks, &waits, render::now()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `diff <task>`.
pub async fn diff(client: &Client, task: &str, json: bool) -> Result<ExitCode> {
    let value = client.get_json(&format!("/tasks/{task}/diff")).await?;
    if json {
        print_json(&value);
    } else {
        let text = value["diff"].as_str().unwrap_or("");
        if text.is_empty() {
            say!("Task {task} has no changes.");
        } else {
            if let Some(message) = value["commit_message"].as_str().filter(|m| !m.is_empty()) {
                say!("Proposed commit message:");
                for line in message.trim_end().lines() {
                    say!("    {line}");
                }
                say!();
            }
            say_part!("{text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `approve <task>` / `deny <task>`.
pub async fn decide(client: &Client, args: DecideArgs, verb: &str) -> Result<ExitCode> {
    let outcome = client
        .call_json(
            Method::POST,
            &format!("/tasks/{}/{verb}", args.task),
            &json!({
                "action": args.action,
                "reason": args.reason,
                "scope": if args.always { "always" } else if args.for_task { "task" } else { "once" },
            }),
        )
        .await?;
    if args.json {
        print_json(&outcome);
        return Ok(ExitCode::SUCCESS);
    }
    let task = &outcome["task"];
    if outcome["approval"]["action"] == "merge" {
        say!(
            "{}: {}",
            if verb == "approve" {
                "Merged"
            } else {
                "Denied"
            },
            outcome["approval"]["summary"].as_str().unwrap_or("")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if outcome["approval"]["action"] == "push" {
        if verb == "approve" {
            say!(
                "Pushed {} ({})",
                task["branch"].as_str().unwrap_or("?"),
                task["commit_sha"].as_str().unwrap_or("?")
            );
        } else {
            say!(
                "Denied the push of {}",
                task["branch"].as_str().unwrap_or("?")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if outcome["approval"]["action"] == "command" {
        say!(
            "{} approval #{}: {}",
            if verb == "approve" {
                "Approved"
            } else {
                "Denied"
            },
            outcome["approval"]["id"],
            outcome["approval"]["summary"].as_str().unwrap_or("")
        );
        return Ok(ExitCode::SUCCESS);
    }
    match task["state"].as_str() {
        Some("committed") => say!(
            "Committed {} on {}",
            task["commit_sha"].as_str().unwrap_or("?"),
            task["branch"].as_str().unwrap_or("?")
        ),
        Some("rejected") => say!(
            "Denied. The branch {} and its worktree are kept for inspection; \
             `pushpals task rm {}` cleans them up.",
            task["branch"].as_str().unwrap_or("?"),
            args.task
        ),
        Some(state) => {
            say!(
                "Task {} is now {state}: {}",
                args.task,
                task["reason"].as_str().unwrap_or("")
            );
            if state == "failed" {
                return Ok(ExitCode::FAILURE);
            }
        }
        None => print_json(&outcome),
    }
    Ok(ExitCode::SUCCESS)
}

/// `cancel <task>`.
pub async fn cancel(client: &Client, task: &str, json: bool) -> Result<ExitCode> {
    let cancelled = client
        .call_json(Method::POST, &format!("/tasks/{task}/cancel"), &json!({}))
        .await?;
    if json {
        print_json(&cancelled);
        return Ok(ExitCode::SUCCESS);
    }
    say!("Cancelled task {task}; its worktree and branch are kept.");
    Ok(ExitCode::SUCCESS)
}

/// `false-positive <task> <fingerprint> --reason`.
pub async fn false_positive(
    client: &Client,
    task: &str,
    fingerprint: &str,
    reason: &str,
) -> Result<ExitCode> {
    let outcome = client
        .call_json(
            Method::POST,
            &format!("/tasks/{task}/secrets/{fingerprint}/false-positive"),
            &json!({ "reason": reason }),
        )
        .await?;
    let finding = &outcome["overridden"];
    say!(
        "Marked {}:{} ({}) a false positive; the audit log keeps your reason.",
        finding["file"].as_str().unwrap_or("?"),
        finding["line"],
        finding["rule"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

/// `merge <task>`: asks for the merge.
pub async fn merge(client: &Client, task: &str) -> Result<ExitCode> {
    let approval = client
        .call_json(Method::POST, &format!("/tasks/{task}/merge"), &json!({}))
        .await?;
    say!(
        "Asked: {} — approve with `pushpals approve {task} --action merge`",
        approval["summary"].as_str().unwrap_or("merge")
    );
    Ok(ExitCode::SUCCESS)
}

/// `continue <task> --run "..."`.
pub async fn continue_task(
    client: &Client,
    task: &str,
    run: Option<String>,
    approve_run: bool,
    json: bool,
) -> Result<ExitCode> {
    let continued = client
        .call_json(
            Method::POST,
            &format!("/tasks/{task}/continue"),
            &json!({ "command": run, "approve_command": approve_run }),
        )
        .await?;
    if json {
        print_json(&continued);
        return Ok(ExitCode::SUCCESS);
    }
    say!("Continued task {task}; follow it with: pushpals log {task} --follow");
    Ok(ExitCode::SUCCESS)
}

/// `chat <message>`.
pub async fn chat(client: &Client, message: &str, json: bool) -> Result<ExitCode> {
    let reply = client
        .call_json(Method::POST, "/chat", &json!({ "message": message }))
        .await?;
    if json {
        print_json(&reply);
    } else {
        say!("{}", reply["reply"].as_str().unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}
