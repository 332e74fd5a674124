//! OpenHands (the `openhands` CLI on PyPI, Python 3.12 or newer). It
//! speaks OpenAI Chat Completions through litellm. Where the sandbox can
//! carry a session it runs as an Agent Client Protocol agent (`openhands
//! acp`) in its default "always ask" mode: it announces its actions and
//! asks once to confirm them, and Push Pals's judge answers for each. Its
//! ACP mode reads the model only from its settings file, which goes into
//! the private home. Otherwise it runs headless (`--headless --json
//! --override-with-envs -t PROMPT`), where it approves its own actions and
//! the sandbox confines them, writing one JSON event per line.

use super::{About, ExternalAgent, Launch, Setup, Step, cut, env_of, shell_quote, write_private};
use crate::config::Protocol;
use serde_json::{Value, json};

/// Longest tool output kept in a step.
const MAX_RESULT: usize = 4096;

/// Its settings, relative to its home.
pub const SETTINGS: &str = ".openhands/agent_settings.json";

/// The OpenHands adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenHands;

impl ExternalAgent for OpenHands {
    fn about(&self) -> About {
        About {
            name: "openhands",
            program: "openhands",
            install_hint: "python3.12 -m pip install openhands",
            protocol: Protocol::Openai,
        }
    }

    fn prepare(&self, setup: &Setup<'_>) -> Result<Launch, String> {
        let model = format!("openai/{}", setup.model);
        let base_url = format!("{}/v1", setup.gateway_url);
        // The token is the task's, revoked when the run ends; the file is
        // private to the home, which is outside the worktree.
        let settings = json!({
            "llm": { "model": model, "base_url": base_url, "api_key": setup.token, "usage_id": "agent" },
        });
        write_private(
            &setup.home.join(SETTINGS),
            &serde_json::to_string_pretty(&settings).map_err(|e| e.to_string())?,
        )?;
        let program = shell_quote(&setup.program.to_string_lossy());
        let mut env = env_of(&[
            ("LLM_MODEL", model.as_str()),
            ("LLM_BASE_URL", base_url.as_str()),
            ("LLM_API_KEY", setup.token),
            ("OPENHANDS_SUPPRESS_BANNER", "1"),
            // litellm would fetch its price list and report telemetry.
            ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
            ("LITELLM_TELEMETRY", "False"),
            ("NO_COLOR", "1"),
        ]);
        if setup.acp {
            // No `--always-approve`: every action is confirmed through the
            // session, where the judge answers.
            return Ok(Launch {
                command_line: format!("exec {program} acp"),
                env,
            });
        }
        env.push(("TTY_INTERACTIVE".into(), "0".into()));
        let mut line = format!(
            "exec {program} --headless --json --override-with-envs -t {}",
            shell_quote(setup.prompt)
        );
        if let Some(session) = setup.resume {
            line.push_str(&format!(" --resume {}", shell_quote(session)));
        }
        line.push_str(" < /dev/null");
        Ok(Launch {
            command_line: line,
            env,
        })
    }

    fn speaks_acp(&self) -> bool {
        true
    }

    fn parse_line(&self, line: &str) -> Vec<Step> {
        // Its last line names the conversation, to resume; the run's
        // summary is what its finish action said.
        if let Some(id) = line.trim().strip_prefix("Conversation ID: ") {
            return vec![Step::Finished {
                ok: true,
                summary: String::new(),
                session: Some(id.trim().to_owned()),
                turns: None,
            }];
        }
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Vec::new();
        };
        let id = event["tool_call_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match (event["kind"].as_str(), event["source"].as_str()) {
            (Some("MessageEvent"), Some("agent")) => {
                let text = texts(&event["llm_message"]["content"]);
                if text.is_empty() {
                    Vec::new()
                } else {
                    vec![Step::Message { text }]
                }
            }
            (Some("ActionEvent"), _) => {
                let mut steps = Vec::new();
                let thought = texts(&event["thought"]);
                if !thought.is_empty() {
                    steps.push(Step::Message { text: thought });
                }
                if event["tool_name"] == "finish" {
                    steps.push(Step::Message {
                        text: event["action"]["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    });
                } else {
                    steps.push(Step::ToolCall {
                        id,
                        tool: event["tool_name"].as_str().unwrap_or("other").to_owned(),
                        input: event["action"].clone(),
                    });
                }
                steps
            }
            (Some("ObservationEvent"), _) if event["tool_name"] != "finish" => {
                let observation = &event["observation"];
                vec![Step::ToolResult {
                    id,
                    output: cut(&texts(&observation["content"]), MAX_RESULT),
                    is_error: observation["is_error"].as_bool() == Some(true)
                        || observation["exit_code"]
                            .as_i64()
                            .is_some_and(|code| code != 0),
                }]
            }
            (Some("AgentErrorEvent" | "UserRejectObservation"), _) => vec![Step::ToolResult {
                id,
                output: cut(
                    event["error"]
                        .as_str()
                        .or(event["rejection_reason"].as_str())
                        .unwrap_or("refused"),
                    MAX_RESULT,
                ),
                is_error: true,
            }],
            (Some("ConversationErrorEvent"), _) => vec![Step::Message {
                text: format!(
                    "(OpenHands reported an error) {}",
                    event["detail"]
                        .as_str()
                        .or(event["code"].as_str())
                        .unwrap_or_default()
                ),
            }],
            _ => Vec::new(),
        }
    }
}

/// The text parts of an OpenHands content list, joined.
fn texts(content: &Value) -> String {
    content
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|part| part["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::test_setup;
    use std::path::Path;

    /// A headless JSON stream as OpenHands 1.16 writes it (fields it
    /// repeats on every event trimmed), with the lines it writes for people.
    const RECORDED: &str = r#"Initializing agent...
{"id": "e1", "source": "user", "llm_message": {"role": "user", "content": [{"type": "text", "text": "add hi"}]}, "kind": "MessageEvent"}
Agent is working
{"id": "e2", "source": "agent", "thought": [{"type": "text", "text": "Adding hi."}], "action": {"command": "echo hi >> a.txt", "is_input": false, "kind": "TerminalAction"}, "tool_name": "terminal", "tool_call_id": "c1", "summary": "add hi", "kind": "ActionEvent"}
{"id": "e3", "source": "agent", "thought": [], "action": {"command": "create", "path": "/w/b.txt", "file_text": "bee\n", "kind": "FileEditorAction"}, "tool_name": "file_editor", "tool_call_id": "c2", "kind": "ActionEvent"}
{"id": "e4", "source": "environment", "tool_name": "terminal", "tool_call_id": "c1", "observation": {"content": [{"type": "text", "text": ""}], "is_error": false, "command": "echo hi >> a.txt", "exit_code": 0, "kind": "TerminalObservation"}, "kind": "ObservationEvent"}
{"id": "e5", "source": "environment", "tool_name": "file_editor", "tool_call_id": "c2", "observation": {"content": [{"type": "text", "text": "File created successfully at: /w/b.txt"}], "is_error": false, "kind": "FileEditorObservation"}, "kind": "ObservationEvent"}
{"id": "e6", "source": "agent", "thought": [], "action": {"message": "Added hi and bee.", "kind": "FinishAction"}, "tool_name": "finish", "tool_call_id": "c3", "kind": "ActionEvent"}
{"id": "e7", "source": "environment", "tool_name": "finish", "tool_call_id": "c3", "observation": {"content": [{"type": "text", "text": "Added hi and bee."}], "is_error": false, "kind": "FinishObservation"}, "kind": "ObservationEvent"}
Agent finished
Conversation ID: a2b70ae6fb214dad8154a70c0a190a30"#;

    #[test]
    fn a_recorded_stream_becomes_steps() {
        let steps: Vec<Step> = RECORDED
            .lines()
            .flat_map(|line| OpenHands.parse_line(line))
            .collect();
        assert_eq!(
            steps,
            vec![
                Step::Message {
                    text: "Adding hi.".into()
                },
                Step::ToolCall {
                    id: "c1".into(),
                    tool: "terminal".into(),
                    input: json!({ "command": "echo hi >> a.txt", "is_input": false, "kind": "TerminalAction" }),
                },
                Step::ToolCall {
                    id: "c2".into(),
                    tool: "file_editor".into(),
                    input: json!({ "command": "create", "path": "/w/b.txt", "file_text": "bee\n", "kind": "FileEditorAction" }),
                },
                Step::ToolResult {
                    id: "c1".into(),
                    output: String::new(),
                    is_error: false
                },
                Step::ToolResult {
                    id: "c2".into(),
                    output: "File created successfully at: /w/b.txt".into(),
                    is_error: false
                },
                Step::Message {
                    text: "Added hi and bee.".into()
                },
                Step::Finished {
                    ok: true,
                    summary: String::new(),
                    session: Some("a2b70ae6fb214dad8154a70c0a190a30".into()),
                    turns: None
                },
            ]
        );
    }

    #[test]
    fn failures_and_refusals_are_errors() {
        let failed = OpenHands.parse_line(
            r#"{"kind": "ObservationEvent", "tool_name": "terminal", "tool_call_id": "c9", "observation": {"content": [{"type": "text", "text": "no such file"}], "is_error": false, "exit_code": 1}}"#,
        );
        assert!(
            matches!(&failed[0], Step::ToolResult { is_error: true, output, .. } if output == "no such file")
        );
        let rejected = OpenHands.parse_line(
            r#"{"kind": "UserRejectObservation", "tool_call_id": "c9", "rejection_reason": "denied by policy"}"#,
        );
        assert!(
            matches!(&rejected[0], Step::ToolResult { is_error: true, output, .. } if output == "denied by policy")
        );
        let broken = OpenHands.parse_line(
            r#"{"kind": "ConversationErrorEvent", "code": "LLMError", "detail": "budget spent"}"#,
        );
        assert!(matches!(&broken[0], Step::Message { text } if text.ends_with("budget spent")));
        assert!(OpenHands.parse_line("Agent is working").is_empty());
    }

    #[test]
    fn its_settings_point_at_the_gateway_with_the_token_only() {
        let home = tempfile::tempdir().unwrap();
        let setup = |acp: bool| Setup {
            token: "ppgw-abc",
            model: "m-real",
            program: Path::new("/agents/oh/bin/openhands"),
            prompt: "add 'bar'",
            resume: Some("conv-1"),
            acp,
            ..test_setup(home.path())
        };
        let launch = OpenHands.prepare(&setup(true)).unwrap();
        assert_eq!(launch.command_line, "exec '/agents/oh/bin/openhands' acp");
        assert!(!launch.command_line.contains("approve"), "it asks first");
        let settings: Value =
            serde_json::from_str(&std::fs::read_to_string(home.path().join(SETTINGS)).unwrap())
                .unwrap();
        assert_eq!(settings["llm"]["base_url"], "http://127.0.0.1:4141/v1");
        assert_eq!(settings["llm"]["api_key"], "ppgw-abc");
        assert_eq!(settings["llm"]["model"], "openai/m-real");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join(SETTINGS))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private to its owner");

        let launch = OpenHands.prepare(&setup(false)).unwrap();
        assert!(
            launch.command_line.ends_with(
                "--headless --json --override-with-envs -t 'add '\\''bar'\\''' --resume 'conv-1' < /dev/null"
            ),
            "{}",
            launch.command_line
        );
        assert!(
            launch
                .env
                .contains(&("LLM_BASE_URL".into(), "http://127.0.0.1:4141/v1".into()))
        );
    }
}
