//! Agent tasks end to end: the orchestrator hosts the built-in agent, which
//! talks to the scripted model server and runs its commands in the real
//! sandbox.
//!
//! Over 400 lines: one test per part of the agent's course on the real
//! sandbox (tools, budgets, steering, plans), sharing this file's helpers.

use super::support::{Fixture, kinds, start_sandboxed, user, wait_until};
use pushpals_core::{AgentWork, EventKind, Task, TaskState};
use pushpals_orchestrator::NewTask;
use pushpals_store::EventQuery;
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};
use serde_json::Value;

pub(crate) fn model_settings(server: &ScriptedModel, extra: &str) -> String {
    format!(
        r#"max_parallel = 4
[models.strong]
protocol = "openai"
base_url = "{}"
model = "scripted-worker"
max_retries = 2
input_price_per_mtok = 1.0
output_price_per_mtok = 2.0
[models.fast]
protocol = "anthropic"
base_url = "{}"
model = "scripted-planner"
max_retries = 0
{extra}"#,
        server.openai_base(),
        server.anthropic_base()
    )
}

/// A repository whose tests pass once `src/lib.rs` has `pub fn bar`.
pub(crate) fn repo_with_tests() -> TempRepo {
    let repo = TempRepo::new();
    repo.write("Makefile", "test:\n\tgrep -q 'pub fn bar' src/lib.rs\n");
    repo.write("pushpals.toml", "[checks]\ntest = \"make test\"\n");
    repo.write("AGENTS.md", "Keep functions public.\n");
    repo.commit_all("tests");
    repo
}

pub(crate) async fn agent_task(f: &Fixture, title: &str, prompt: &str) -> Task {
    f.orchestrator
        .create_task(
            NewTask {
                title: title.into(),
                command: None,
                agent: Some(AgentWork {
                    prompt: prompt.into(),
                    ..AgentWork::default()
                }),
                approve_command: false,
                repo: None,
            },
            user(),
        )
        .await
        .unwrap()
}

async fn payloads(f: &Fixture, task: &Task, kind: EventKind) -> Vec<Value> {
    f.orchestrator
        .store()
        .events(EventQuery {
            task_id: Some(task.id.clone()),
            ..EventQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind.as_str())
        .map(|e| e.payload)
        .collect()
}

/// The tool results the model saw in request `index`.
fn tool_results(server: &ScriptedModel, index: usize) -> Vec<String> {
    server.requests()[index].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_agent_lists_reads_edits_tests_and_finishes_with_exactly_its_diff() {
    let server = ScriptedModel::start(vec![
        Reply::tool("list_files", "{}"),
        Reply::tool("read_file", r#"{"path":"src/lib.rs"}"#),
        Reply::text_and_tools(
            "Adding bar.",
            &[(
                "edit_file",
                r#"{"path":"src/lib.rs","old_text":"pub fn foo() {}","new_text":"pub fn foo() {}\npub fn bar() {}"}"#,
            )],
        ),
        Reply::tool("run_command", r#"{"command":"make test"}"#),
        Reply::tool("finish", r#"{"summary":"Added bar next to foo; make test passes."}"#),
    ])
    .await;
    let f = start_sandboxed(repo_with_tests(), &model_settings(&server, "")).await;
    let task = agent_task(&f, "Add bar", "Add a public function bar next to foo.").await;
    let task = wait_until(&f.orchestrator, &task.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(task.state, TaskState::AwaitingApproval, "{:?}", task.reason);

    // Exactly the expected change.
    let diff = f.orchestrator.diff(&task.id).await.unwrap().diff;
    assert_eq!(diff.files.len(), 1);
    assert_eq!(diff.files[0].path, "src/lib.rs");
    assert_eq!(
        (diff.files[0].added, diff.files[0].removed),
        (Some(1), Some(0))
    );
    let worktree = task.worktree_path.clone().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("{worktree}/src/lib.rs")).unwrap(),
        "pub fn foo() {}\npub fn bar() {}\n"
    );

    // The system prompt carried the repo's own instructions and checks.
    let first = &server.requests()[0].body;
    let system = first["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Keep functions public.") && system.contains("make test"));
    assert_eq!(first["model"], "scripted-worker");

    // The model saw each result: the listing, the file, the edit, the test run.
    assert!(tool_results(&server, 1)[0].contains("src/lib.rs"));
    assert!(tool_results(&server, 2)[1].contains("pub fn foo() {}"));
    assert!(tool_results(&server, 3)[2].contains("edited src/lib.rs"));
    assert!(tool_results(&server, 4)[3].contains("exited with code 0"));

    // The events show every step, in order.
    let tools: Vec<String> = payloads(&f, &task, EventKind::ToolCall)
        .await
        .iter()
        .map(|p| p["tool"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        tools,
        [
            "list_files",
            "read_file",
            "edit_file",
            "run_command",
            "finish"
        ]
    );
    let calls = payloads(&f, &task, EventKind::ModelCall).await;
    assert_eq!(calls.len(), 5);
    assert!(
        calls
            .iter()
            .all(|c| c["input_tokens"].as_u64().unwrap() > 0)
    );
    let all = kinds(&f.orchestrator, &task.id).await;
    let position = |kind: &str| all.iter().position(|k| k == kind).unwrap();
    assert!(position("model_call") < position("tool_call"));
    assert!(position("command_started") < position("agent_finished"));
    assert!(position("agent_finished") < position("check_result"));
    // The warm-up of the repository's checks comes first, then the agent's.
    let commands = payloads(&f, &task, EventKind::CommandStarted).await;
    assert_eq!(commands[0]["step"], "warm:test");
    assert_eq!(commands[1]["step"], "agent:1");
    assert_eq!(commands[0]["backend"], "bubblewrap");

    // Usage and cost are summed on the task.
    assert_eq!(task.usage.model_calls, 5);
    assert!(task.usage.cost_micros > 0);

    // The commit message carries the agent's summary.
    let outcome = f
        .orchestrator
        .decide_for_task(
            &task.id,
            None,
            pushpals_core::Decision::Approve,
            pushpals_orchestrator::ApprovalScope::Once,
            "tester",
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome.task.state, TaskState::Committed);
    let message = f.repo.git(&["log", "-1", "--format=%B", &task.branch]);
    assert!(
        message.starts_with("Add bar\n\nAdded bar next to foo"),
        "{message}"
    );
}

#[tokio::test]
async fn a_denied_command_reaches_the_model_and_the_loop_goes_on() {
    let server = ScriptedModel::start(vec![
        Reply::tool("run_command", r#"{"command":"sudo make install"}"#),
        Reply::tool(
            "write_file",
            r#"{"path":"NOTES.md","content":"no sudo here\n"}"#,
        ),
        Reply::tool("finish", r#"{"summary":"wrote notes"}"#),
    ])
    .await;
    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    let task = agent_task(&f, "Install", "Install it system-wide.").await;
    let task = wait_until(&f.orchestrator, &task.id, |s| {
        s.is_final() || s == TaskState::AwaitingApproval
    })
    .await;
    assert_eq!(task.state, TaskState::AwaitingApproval, "{:?}", task.reason);
    let refusal = &tool_results(&server, 1)[0];
    assert!(refusal.starts_with("the command was not run"), "{refusal}");
    assert!(refusal.contains("sudo"), "{refusal}");
    let decisions = payloads(&f, &task, EventKind::PolicyDecision).await;
    assert_eq!(decisions[0]["decision"], "deny");
    assert!(
        payloads(&f, &task, EventKind::CommandStarted)
            .await
            .is_empty(),
        "nothing ran"
    );
    assert_eq!(
        f.orchestrator.diff(&task.id).await.unwrap().diff.files[0].path,
        "NOTES.md"
    );
}

#[tokio::test]
async fn malformed_and_unknown_tool_calls_are_reported_back() {
    let server = ScriptedModel::start(vec![
        Reply::tools(&[
            ("read_file", r#"{"path": "src/lib.rs"#),
            ("fly", "{}"),
            ("read_file", "[1]"),
        ]),
        Reply::tool("write_file", r#"{"path":"../escape.txt","content":"x"}"#),
        Reply::text("Nothing to change after all."),
    ])
    .await;
    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    let task = agent_task(&f, "Look around", "Look around.").await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::NoChanges, "{:?}", task.reason);
    let results = tool_results(&server, 1);
    assert!(results[0].contains("not valid JSON"), "{}", results[0]);
    assert!(
        results[1].contains("no tool named \"fly\""),
        "{}",
        results[1]
    );
    assert!(
        results[2].contains("must be a JSON object"),
        "{}",
        results[2]
    );
    let escape = &tool_results(&server, 2)[3];
    assert!(escape.contains("`..` is not allowed"), "{escape}");
    let errors: Vec<bool> = payloads(&f, &task, EventKind::ToolCall)
        .await
        .iter()
        .map(|p| p["is_error"].as_bool().unwrap())
        .collect();
    assert_eq!(errors, [true, true, true, true]);
}

#[tokio::test]
async fn a_rate_limit_is_retried_and_recorded() {
    let server = ScriptedModel::start(vec![
        Reply::error(429, "rate limited").retry_after("0"),
        Reply::tool("finish", r#"{"summary":"nothing to do"}"#),
    ])
    .await;
    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    let task = agent_task(&f, "Nothing", "Do nothing.").await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::NoChanges, "{:?}", task.reason);
    let calls = payloads(&f, &task, EventKind::ModelCall).await;
    assert_eq!(calls[0]["retries"][0], "429: rate limited");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_401_fails_the_task_with_the_providers_message() {
    let server = ScriptedModel::start(vec![Reply::error(401, "Incorrect API key provided")]).await;
    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    let task = agent_task(&f, "Anything", "Anything.").await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::Failed);
    let reason = task.reason.unwrap();
    assert!(
        reason.contains("401") && reason.contains("Incorrect API key provided"),
        "{reason}"
    );
    assert_eq!(server.requests().len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn the_step_budget_stops_the_loop_and_keeps_the_worktree() {
    let server = ScriptedModel::start(vec![
        Reply::tool("write_file", r#"{"path":"a.txt","content":"1\n"}"#),
        Reply::tool("list_files", "{}"),
        Reply::tool("list_files", "{}"),
    ])
    .await;
    let f = start_sandboxed(
        TempRepo::new(),
        &model_settings(&server, "[agent.budget]\nmax_steps = 2\n"),
    )
    .await;
    let task = agent_task(&f, "Loop", "Loop forever.").await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::Failed);
    assert!(
        task.reason.as_deref().unwrap().contains("step budget"),
        "{:?}",
        task.reason
    );
    assert_eq!(server.requests().len(), 2);
    let worktree = task.worktree_path.unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("{worktree}/a.txt")).unwrap(),
        "1\n"
    );
}

#[tokio::test]
async fn agent_tasks_need_a_configured_model_and_a_clean_brief() {
    let server = ScriptedModel::start(vec![]).await;
    let f = start_sandboxed(TempRepo::new(), "max_parallel = 1\n").await;
    let error = f
        .orchestrator
        .create_task(
            NewTask {
                title: "t".into(),
                command: None,
                agent: Some(AgentWork {
                    prompt: "p".into(),
                    ..AgentWork::default()
                }),
                approve_command: false,
                repo: None,
            },
            user(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("[models.strong]"), "{error}");

    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    let bad = |work: AgentWork, command: Option<&str>| {
        let orchestrator = f.orchestrator.clone();
        let command = command.map(str::to_owned);
        async move {
            orchestrator
                .create_task(
                    NewTask {
                        title: "t".into(),
                        command,
                        agent: Some(work),
                        approve_command: false,
                        repo: None,
                    },
                    user(),
                )
                .await
                .unwrap_err()
                .to_string()
        }
    };
    let brief = |prompt: &str| AgentWork {
        prompt: prompt.into(),
        ..AgentWork::default()
    };
    assert!(bad(brief("  "), None).await.contains("needs a prompt"));
    assert!(bad(brief("p"), Some("true")).await.contains("not both"));
    let escaping = AgentWork {
        scope: vec!["../other".into()],
        ..brief("p")
    };
    assert!(bad(escaping, None).await.contains("scope"));
    let dangling = AgentWork {
        depends_on: vec![pushpals_core::TaskId::parse("nosuchtask1").unwrap()],
        ..brief("p")
    };
    assert!(bad(dangling, None).await.contains("does not exist"));
    let secret = bad(brief("use key AKIAABCDEFGHIJKLMNOP"), None).await;
    assert!(secret.contains("looks like a secret"), "{secret}");
    assert!(
        f.orchestrator.store().tasks(None).await.unwrap().is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn long_output_is_cut_and_old_turns_are_summarised_near_the_context_limit() {
    let big: String = (0..400)
        .map(|i| format!("line {i:04} of a long file\n"))
        .collect();
    let server = ScriptedModel::start(vec![
        Reply::tool("read_file", r#"{"path":"big.txt"}"#),
        Reply::tool("list_files", "{}"),
        Reply::tool("list_files", "{}"),
        Reply::text("SUMMARY: read big.txt, listed twice."),
        Reply::tool("finish", r#"{"summary":"looked"}"#),
    ])
    .await;
    let repo = TempRepo::new();
    repo.write("big.txt", &big);
    repo.commit_all("big");
    let settings = model_settings(&server, "[agent]\nmax_tool_output = 1000\n").replace(
        "model = \"scripted-worker\"",
        "model = \"scripted-worker\"\ncontext_tokens = 1200\nmax_output_tokens = 100",
    );
    let f = start_sandboxed(repo, &settings).await;
    let task = agent_task(&f, "Look", "Look at big.txt.").await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::NoChanges, "{:?}", task.reason);

    let read = &tool_results(&server, 1)[0];
    assert!(
        read.len() < 1200 && read.contains("bytes left out"),
        "{read}"
    );
    assert!(read.contains("line 0000") && read.contains("line 0399"));

    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    let summary_request = &requests[3].body;
    assert!(
        summary_request.get("tools").is_none(),
        "the summary call offers no tools"
    );
    assert!(
        summary_request["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("summarise")
    );
    let after = &requests[4].body["messages"];
    let first_user = after[1]["content"].as_str().unwrap();
    assert!(first_user.starts_with("Look at big.txt."), "{first_user}");
    assert!(first_user.contains("Summary of the work so far:\nSUMMARY: read big.txt"));
    // The read and its long result were replaced; the two listings stay.
    assert_eq!(after.as_array().unwrap().len(), 6, "{after}");
    assert!(!after.to_string().contains("line 0000"));
    let summarised = payloads(&f, &task, EventKind::ContextSummarised).await;
    assert_eq!(summarised.len(), 1);
    let purposes: Vec<String> = payloads(&f, &task, EventKind::ModelCall)
        .await
        .iter()
        .map(|p| p["purpose"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(purposes, ["step", "step", "step", "summary", "step"]);
}

#[tokio::test]
async fn cancelling_stops_the_agent_in_the_middle_of_a_model_call() {
    let server = ScriptedModel::start(vec![
        Reply::tool("list_files", "{}").held(),
        Reply::tool("finish", r#"{"summary":"never"}"#),
    ])
    .await;
    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    let task = agent_task(&f, "Wait", "Wait.").await;
    for _ in 0..500 {
        if !server.requests().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let cancelled = f.orchestrator.cancel_task(&task.id, user()).await.unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    server.release();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.requests().len(), 1, "no call after the cancel");
    let task = f.orchestrator.store().task(&task.id).await.unwrap();
    assert_eq!(task.state, TaskState::Cancelled);
    assert!(payloads(&f, &task, EventKind::ToolCall).await.is_empty());
}

#[tokio::test]
async fn agents_message_the_person_and_other_tasks() {
    let server = ScriptedModel::start_keyed(vec![(
        "Task: Sender",
        vec![
            Reply::tools(&[
                ("send_message", r#"{"to":"person","text":"Starting now."}"#),
                ("send_message", r#"{"to":"nosuchtask9","text":"hello?"}"#),
            ]),
            Reply::tool("finish", r#"{"summary":"sent"}"#),
        ],
    )])
    .await;
    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    let task = agent_task(&f, "Sender", "Say hello.").await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::NoChanges, "{:?}", task.reason);
    let messages = payloads(&f, &task, EventKind::Message).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["to"], "person");
    assert_eq!(messages[0]["text"], "Starting now.");
    let results = tool_results(&server, 1);
    assert_eq!(results[0], "delivered to the person");
    assert!(
        results[1].contains("there is no task nosuchtask9"),
        "{}",
        results[1]
    );
}

#[tokio::test]
async fn the_time_budget_stops_a_model_call_that_never_answers() {
    let server = ScriptedModel::start(vec![Reply::tool("list_files", "{}").held()]).await;
    let f = start_sandboxed(
        TempRepo::new(),
        &model_settings(&server, "[agent.budget]\nmax_minutes = 0.01\n"),
    )
    .await;
    let task = agent_task(&f, "Slow", "Wait for a slow model.").await;
    let task = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
    assert_eq!(task.state, TaskState::Failed);
    let reason = task.reason.unwrap();
    assert!(
        reason.contains("time budget") && reason.contains("waiting for the model"),
        "{reason}"
    );
    server.release();
}
