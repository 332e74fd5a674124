//! The client against an agent played over an in-memory pipe, speaking as
//! Gemini CLI's ACP mode does.
//!
//! Over 400 lines: each test plays the agent's side of a whole session against the one ACP
//! client.

use super::*;
use crate::gateway::JudgeFuture;
use std::sync::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

type Lines = tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>;

async fn next(lines: &mut Lines) -> Value {
    serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap()
}

async fn say(writer: &mut tokio::io::WriteHalf<tokio::io::DuplexStream>, value: Value) {
    writer
        .write_all(format!("{value}\n").as_bytes())
        .await
        .unwrap();
}

/// Plays the agent's side of `initialize` and `session/new` (session
/// `s-1`); returns the `session/new` request.
async fn open_session(
    lines: &mut Lines,
    writer: &mut tokio::io::WriteHalf<tokio::io::DuplexStream>,
) -> Value {
    let init = next(lines).await;
    assert_eq!(init["method"], "initialize");
    say(
        writer,
        json!({ "jsonrpc": "2.0", "id": init["id"], "result": { "protocolVersion": 1 } }),
    )
    .await;
    let new = next(lines).await;
    assert_eq!(new["method"], "session/new");
    say(
        writer,
        json!({ "jsonrpc": "2.0", "id": new["id"], "result": { "sessionId": "s-1" } }),
    )
    .await;
    new
}

/// Denies `git push`, allows the rest, and remembers what it was asked.
struct Strict(Mutex<Vec<String>>);

impl Judge for Strict {
    fn judge(&self, tool: ToolUse) -> JudgeFuture {
        let said = format!("{}:{}", tool.tool, tool.input);
        self.0.lock().unwrap().push(said.clone());
        Box::pin(async move {
            if said.contains("git push") {
                Verdict::Deny("pushing is the orchestrator's job".into())
            } else {
                Verdict::Allow("fine".into())
            }
        })
    }
}

fn fresh(prompt: &str) -> Opening<'_> {
    Opening {
        prompt,
        resume: None,
    }
}

fn options() -> Value {
    json!([
        { "optionId": "proceed_always", "kind": "allow_always" },
        { "optionId": "proceed_once", "kind": "allow_once" },
        { "optionId": "cancel", "kind": "reject_once" },
    ])
}

#[tokio::test]
async fn a_turn_is_served_with_the_judges_answers() {
    let (client_side, agent_side) = tokio::io::duplex(1 << 16);
    let agent = tokio::spawn(async move {
        let (reader, mut writer) = tokio::io::split(agent_side);
        let mut lines = BufReader::new(reader).lines();
        let mut answers = Vec::new();
        let new = open_session(&mut lines, &mut writer).await;
        assert_eq!(new["params"]["cwd"], "/work/tree");
        let prompt = next(&mut lines).await;
        assert_eq!(prompt["params"]["prompt"][0]["text"], "add bar");
        for chunk in ["Adding ", "bar."] {
            say(&mut writer, json!({ "jsonrpc": "2.0", "method": "session/update", "params": { "sessionId": "s-1",
                "update": { "sessionUpdate": "agent_message_chunk", "content": { "type": "text", "text": chunk } } } })).await;
        }
        for (n, title) in [(0, "git push origin main"), (1, "printf x >> a.rs")] {
            say(&mut writer, json!({ "jsonrpc": "2.0", "id": n, "method": "session/request_permission", "params": {
                "sessionId": "s-1", "options": options(),
                "toolCall": { "toolCallId": format!("t{n}"), "title": title, "kind": "execute", "status": "pending" } } })).await;
            answers.push(next(&mut lines).await);
        }
        say(&mut writer, json!({ "jsonrpc": "2.0", "id": 7, "method": "fs/read_text_file", "params": { "path": "/etc/passwd" } })).await;
        answers.push(next(&mut lines).await);
        say(&mut writer, json!({ "jsonrpc": "2.0", "method": "session/update", "params": { "sessionId": "s-1",
            "update": { "sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed",
                        "content": [{ "type": "content", "content": { "type": "text", "text": "done" } },
                                    { "type": "diff", "path": "a.rs", "oldText": "fn a() {}\nfn b() {}\n", "newText": "fn a() {}\nfn c() {}\n" }] } } })).await;
        say(
            &mut writer,
            json!({ "jsonrpc": "2.0", "id": prompt["id"], "result": { "stopReason": "end_turn" } }),
        )
        .await;
        answers
    });
    let judge = Strict(Mutex::new(Vec::new()));
    let (steps, mut received) = mpsc::unbounded_channel();
    run_session(
        client_side,
        "/work/tree",
        fresh("add bar"),
        &judge,
        &steps,
        &|| None,
    )
    .await
    .unwrap();
    let answers = agent.await.unwrap();
    assert_eq!(
        answers[0]["result"]["outcome"]["optionId"], "cancel",
        "git push is rejected"
    );
    assert_eq!(
        answers[1]["result"]["outcome"]["optionId"], "proceed_once",
        "allowed once, not always"
    );
    assert_eq!(answers[2]["error"]["code"], -32601, "files are not offered");
    let asked = judge.0.lock().unwrap().clone();
    assert!(
        asked[0].starts_with("Bash:") && asked[0].contains("git push origin main"),
        "{asked:?}"
    );
    let all = drained(&mut received);
    assert!(matches!(&all[0], Step::Started { session: Some(s), .. } if s == "s-1"));
    assert_eq!(
        all[1],
        Step::MessagePart {
            text: "Adding ".into()
        }
    );
    assert!(all.iter().any(|s| matches!(s, Step::Message { text } if text.contains("pushing is the orchestrator's job"))));
    assert!(all.iter().any(|s| matches!(s, Step::ToolResult { id, output, is_error: false }
        if id == "t1" && output.starts_with("done\n--- a/a.rs\n+++ b/a.rs\n@@ -2,1 +2,1 @@\n-fn b() {}\n+fn c() {}"))), "{all:?}");
    // Calls announced only in their permission request are steps too.
    for (id, command) in [("t0", "git push origin main"), ("t1", "printf x >> a.rs")] {
        assert!(
            all.iter()
                .any(|s| matches!(s, Step::ToolCall { id: i, input, .. }
                if i == id && input["command"] == command)),
            "{id} was not recorded: {all:?}"
        );
    }
    assert!(matches!(all.last(), Some(Step::Finished { ok: true, .. })));
}

#[tokio::test]
async fn an_agent_that_ends_early_or_refuses_is_an_error() {
    let (client_side, agent_side) = tokio::io::duplex(4096);
    drop(agent_side);
    let judge = Strict(Mutex::new(Vec::new()));
    let (steps, _received) = mpsc::unbounded_channel();
    let error = run_session(client_side, "/w", fresh("x"), &judge, &steps, &|| None)
        .await
        .unwrap_err();
    assert!(
        error.contains("before answering initialize") || error.contains("closed"),
        "{error}"
    );

    let (client_side, agent_side) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        let (reader, mut writer) = tokio::io::split(agent_side);
        let mut lines = BufReader::new(reader).lines();
        let init: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        let refusal = json!({ "jsonrpc": "2.0", "id": init["id"], "error": { "code": -32000, "message": "needs login" } });
        writer
            .write_all(format!("{refusal}\n").as_bytes())
            .await
            .unwrap();
    });
    let error = run_session(client_side, "/w", fresh("x"), &judge, &steps, &|| None)
        .await
        .unwrap_err();
    assert!(error.contains("needs login"), "{error}");
}

#[tokio::test]
async fn a_message_that_came_meanwhile_is_the_next_turn() {
    let (client_side, agent_side) = tokio::io::duplex(1 << 16);
    let agent = tokio::spawn(async move {
        let (reader, mut writer) = tokio::io::split(agent_side);
        let mut lines = BufReader::new(reader).lines();
        open_session(&mut lines, &mut writer).await;
        let mut prompts = Vec::new();
        for _ in 0..2 {
            let prompt = next(&mut lines).await;
            prompts.push(
                prompt["params"]["prompt"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
            say(&mut writer, json!({ "jsonrpc": "2.0", "id": prompt["id"], "result": { "stopReason": "end_turn" } })).await;
        }
        prompts
    });
    let judge = Strict(Mutex::new(Vec::new()));
    let (steps, _received) = mpsc::unbounded_channel();
    let inbox = Mutex::new(vec!["also handle the empty case".to_owned()]);
    let more = || inbox.lock().unwrap().pop();
    run_session(client_side, "/w", fresh("add bar"), &judge, &steps, &more)
        .await
        .unwrap();
    assert_eq!(
        agent.await.unwrap(),
        ["add bar", "also handle the empty case"]
    );
}

#[tokio::test]
async fn one_confirmation_for_several_announced_calls_judges_each() {
    // As OpenHands asks: its actions are announced, then confirmed at once.
    let (client_side, agent_side) = tokio::io::duplex(1 << 16);
    let agent = tokio::spawn(async move {
        let (reader, mut writer) = tokio::io::split(agent_side);
        let mut lines = BufReader::new(reader).lines();
        open_session(&mut lines, &mut writer).await;
        let prompt = next(&mut lines).await;
        let mut answers = Vec::new();
        for batch in [
            [
                ("c1", "execute", json!({ "command": "echo hi >> a.txt" })),
                (
                    "c2",
                    "edit",
                    json!({ "command": "create", "path": "/w/b.txt" }),
                ),
            ],
            [
                ("c3", "execute", json!({ "command": "echo again" })),
                (
                    "c4",
                    "execute",
                    json!({ "command": "git push origin main" }),
                ),
            ],
        ] {
            for (id, kind, input) in &batch {
                say(&mut writer, json!({ "jsonrpc": "2.0", "method": "session/update", "params": { "sessionId": "s-1",
                    "update": { "sessionUpdate": "tool_call", "toolCallId": id, "kind": kind,
                                "status": "in_progress", "title": "", "rawInput": input } } })).await;
            }
            say(&mut writer, json!({ "jsonrpc": "2.0", "id": 0, "method": "session/request_permission", "params": {
                "sessionId": "s-1", "options": options(),
                "toolCall": { "toolCallId": "confirmation-s-1", "kind": "other",
                              "title": "Confirm Agent Actions", "status": "pending" } } })).await;
            answers.push(next(&mut lines).await);
            for (id, _, _) in &batch {
                say(&mut writer, json!({ "jsonrpc": "2.0", "method": "session/update", "params": { "sessionId": "s-1",
                    "update": { "sessionUpdate": "tool_call_update", "toolCallId": id, "status": "completed" } } })).await;
            }
        }
        say(
            &mut writer,
            json!({ "jsonrpc": "2.0", "id": prompt["id"], "result": { "stopReason": "end_turn" } }),
        )
        .await;
        answers
    });
    let judge = Strict(Mutex::new(Vec::new()));
    let (steps, _received) = mpsc::unbounded_channel();
    run_session(client_side, "/w", fresh("add hi"), &judge, &steps, &|| None)
        .await
        .unwrap();
    let answers = agent.await.unwrap();
    assert_eq!(answers[0]["result"]["outcome"]["optionId"], "proceed_once");
    assert_eq!(
        answers[1]["result"]["outcome"]["optionId"], "cancel",
        "one denied action rejects the batch"
    );
    let asked = judge.0.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            r#"Bash:{"command":"echo hi >> a.txt"}"#,
            r#"Write:{"file_path":"/w/b.txt"}"#,
            r#"Bash:{"command":"echo again"}"#,
            r#"Bash:{"command":"git push origin main"}"#,
        ],
        "each pending call judged, the finished ones no more"
    );
}

/// Plays an agent that can load sessions: answers `initialize` saying so,
/// then `session/load` (replaying a message of the earlier run) or refuses
/// it, then `session/new` if asked, and one prompt. Returns the methods and
/// the prompt's text it was sent.
async fn loading_agent(
    agent_side: tokio::io::DuplexStream,
    refuse_load: bool,
) -> (Vec<String>, String) {
    let (reader, mut writer) = tokio::io::split(agent_side);
    let mut lines = BufReader::new(reader).lines();
    let mut methods = Vec::new();
    loop {
        let request = next(&mut lines).await;
        let method = request["method"].as_str().unwrap().to_owned();
        methods.push(method.clone());
        let result = match method.as_str() {
            "initialize" => {
                json!({ "protocolVersion": 1, "agentCapabilities": { "loadSession": true } })
            }
            "session/load" if refuse_load => {
                say(
                    &mut writer,
                    json!({ "jsonrpc": "2.0", "id": request["id"],
                    "error": { "code": -32002, "message": "no such session" } }),
                )
                .await;
                continue;
            }
            "session/load" => {
                assert_eq!(request["params"]["sessionId"], "s-old");
                say(&mut writer, json!({ "jsonrpc": "2.0", "method": "session/update", "params": { "sessionId": "s-old",
                    "update": { "sessionUpdate": "agent_message_chunk", "content": { "type": "text", "text": "from the first run" } } } })).await;
                json!({})
            }
            "session/new" => json!({ "sessionId": "s-new" }),
            _ => {
                say(&mut writer, json!({ "jsonrpc": "2.0", "id": request["id"], "result": { "stopReason": "end_turn" } })).await;
                let text = request["params"]["prompt"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                return (methods, text);
            }
        };
        say(
            &mut writer,
            json!({ "jsonrpc": "2.0", "id": request["id"], "result": result }),
        )
        .await;
    }
}

/// The steps sent so far.
fn drained(received: &mut mpsc::UnboundedReceiver<Step>) -> Vec<Step> {
    std::iter::from_fn(|| received.try_recv().ok()).collect()
}

/// A follow-up run against [`loading_agent`]: the methods and prompt the
/// agent saw, and the steps recorded.
async fn follow_up(judge: &Strict, refuse_load: bool) -> (Vec<String>, String, Vec<Step>) {
    let (client_side, agent_side) = tokio::io::duplex(1 << 16);
    let agent = tokio::spawn(loading_agent(agent_side, refuse_load));
    let (steps, mut received) = mpsc::unbounded_channel();
    let opening = Opening {
        prompt: "add bar\n\nalso the empty case",
        resume: Some(("s-old", "also the empty case")),
    };
    run_session(client_side, "/w", opening, judge, &steps, &|| None)
        .await
        .unwrap();
    let (methods, prompt) = agent.await.unwrap();
    (methods, prompt, drained(&mut received))
}

#[tokio::test]
async fn a_follow_up_loads_the_earlier_session_without_recording_its_replay() {
    let (methods, prompt, all) = follow_up(&Strict(Mutex::new(Vec::new())), false).await;
    assert_eq!(methods, ["initialize", "session/load", "session/prompt"]);
    assert_eq!(prompt, "also the empty case", "only what came since");
    assert!(matches!(&all[0], Step::Started { session: Some(s), .. } if s == "s-old"));
    assert!(
        !all.iter()
            .any(|s| matches!(s, Step::MessagePart { text } if text.contains("first run"))),
        "the replay was recorded again: {all:?}"
    );
}

#[tokio::test]
async fn a_session_that_cannot_be_loaded_is_begun_anew_with_the_whole_task() {
    let (methods, prompt, all) = follow_up(&Strict(Mutex::new(Vec::new())), true).await;
    assert_eq!(
        methods,
        [
            "initialize",
            "session/load",
            "session/new",
            "session/prompt"
        ]
    );
    assert_eq!(prompt, "add bar\n\nalso the empty case");
    assert!(all.iter().any(|s| matches!(s, Step::Message { text } if text.contains("could not load") && text.contains("no such session"))), "{all:?}");
    assert!(
        all.iter()
            .any(|s| matches!(s, Step::Started { session: Some(id), .. } if id == "s-new"))
    );
}
