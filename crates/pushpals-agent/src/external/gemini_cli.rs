//! Gemini CLI (`@google/gemini-cli`), headless: `gemini -p PROMPT -y -o
//! stream-json --skip-trust`. It speaks Gemini `generateContent` to
//! `GOOGLE_GEMINI_BASE_URL` with `GEMINI_API_KEY`, selected in its settings
//! file. Where the sandbox can carry a session it runs in its Agent Client
//! Protocol mode (`--acp`), and every tool call it makes asks Push Pals's
//! judge first. Otherwise it writes one JSON event per line and `-y`
//! approves its own calls, which the sandbox then confines.

use super::{About, ExternalAgent, Launch, Setup, Step, cut, env_of, shell_quote, write_private};
use crate::config::Protocol;
use serde_json::{Value, json};

/// Longest tool output kept in a step.
const MAX_RESULT: usize = 4096;

/// The Gemini CLI adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiCli;

impl ExternalAgent for GeminiCli {
    fn about(&self) -> About {
        About {
            name: "gemini-cli",
            program: "gemini",
            install_hint: "npm install -g @google/gemini-cli",
            protocol: Protocol::Gemini,
        }
    }

    fn prepare(&self, setup: &Setup<'_>) -> Result<Launch, String> {
        let settings = json!({
            "security": { "auth": { "selectedType": "gemini-api-key" } },
            "selectedAuthType": "gemini-api-key",
            "privacy": { "usageStatisticsEnabled": false },
            "general": { "disableAutoUpdate": true, "disableUpdateNag": true },
            "telemetry": { "enabled": false },
        });
        write_private(
            &setup.home.join(".gemini/settings.json"),
            &serde_json::to_string_pretty(&settings).map_err(|e| e.to_string())?,
        )?;
        if setup.acp {
            // Every tool call asks for permission through the session.
            return Ok(Launch {
                command_line: format!(
                    "exec {} --acp -m {} --skip-trust",
                    shell_quote(&setup.program.to_string_lossy()),
                    shell_quote(setup.model),
                ),
                env: env(setup),
            });
        }
        let mut line = format!(
            "exec {} -p {} -m {} -y -o stream-json --skip-trust",
            shell_quote(&setup.program.to_string_lossy()),
            shell_quote(setup.prompt),
            shell_quote(setup.model),
        );
        if setup.resume.is_some() {
            // Its sessions are kept per project in the task's private home:
            // the latest is this task's.
            line.push_str(" --resume latest");
        }
        line.push_str(" < /dev/null");
        Ok(Launch {
            command_line: line,
            env: env(setup),
        })
    }

    fn speaks_acp(&self) -> bool {
        true
    }

    fn parse_line(&self, line: &str) -> Vec<Step> {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Vec::new();
        };
        let text = |field: &str| event[field].as_str().unwrap_or_default().to_owned();
        match event["type"].as_str() {
            Some("init") => vec![Step::Started {
                session: event["session_id"].as_str().map(str::to_owned),
                model: event["model"].as_str().map(str::to_owned),
            }],
            Some("message") if event["role"] == "assistant" => {
                if event["delta"].as_bool() == Some(true) {
                    vec![Step::MessagePart {
                        text: text("content"),
                    }]
                } else {
                    vec![Step::Message {
                        text: text("content"),
                    }]
                }
            }
            Some("tool_use") => vec![Step::ToolCall {
                id: text("tool_id"),
                tool: text("tool_name"),
                input: event["parameters"].clone(),
            }],
            Some("tool_result") => vec![Step::ToolResult {
                id: text("tool_id"),
                output: cut(
                    event["output"]
                        .as_str()
                        .or(event["error"]["message"].as_str())
                        .unwrap_or_default(),
                    MAX_RESULT,
                ),
                is_error: event["status"] != "success",
            }],
            Some("error") => vec![Step::Message {
                text: format!("(gemini reported) {}", text("message")),
            }],
            Some("result") => vec![Step::Finished {
                ok: event["status"] == "success",
                summary: event["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                session: None,
                turns: None,
            }],
            _ => Vec::new(),
        }
    }
}

/// The gateway and the token, as Gemini CLI reads them.
fn env(setup: &Setup<'_>) -> Vec<(String, String)> {
    env_of(&[
        ("GOOGLE_GEMINI_BASE_URL", setup.gateway_url),
        ("GEMINI_API_KEY", setup.token),
        ("GEMINI_CLI_NO_RELAUNCH", "true"),
        ("NO_COLOR", "1"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::test_setup;
    use std::path::Path;

    /// A stream as Gemini CLI 0.61 writes it.
    const RECORDED: &str = r#"{"type":"init","timestamp":"t","session_id":"4bdb","model":"m"}
{"type":"message","timestamp":"t","role":"user","content":"add bar"}
{"type":"message","timestamp":"t","role":"assistant","content":"Adding ","delta":true}
{"type":"message","timestamp":"t","role":"assistant","content":"bar.","delta":true}
{"type":"tool_use","timestamp":"t","tool_name":"run_shell_command","tool_id":"rsc_1","parameters":{"command":"ls"}}
{"type":"tool_result","timestamp":"t","tool_id":"rsc_1","status":"success","output":"src"}
{"type":"result","timestamp":"t","status":"success","stats":{"total_tokens":30}}"#;

    #[test]
    fn a_recorded_stream_becomes_steps() {
        let steps: Vec<Step> = RECORDED
            .lines()
            .flat_map(|line| GeminiCli.parse_line(line))
            .collect();
        assert_eq!(
            steps[0],
            Step::Started {
                session: Some("4bdb".into()),
                model: Some("m".into())
            }
        );
        assert_eq!(
            steps[1],
            Step::MessagePart {
                text: "Adding ".into()
            }
        );
        assert_eq!(
            steps[2],
            Step::MessagePart {
                text: "bar.".into()
            }
        );
        assert!(
            matches!(&steps[3], Step::ToolCall { tool, input, .. } if tool == "run_shell_command" && input["command"] == "ls")
        );
        assert_eq!(
            steps[4],
            Step::ToolResult {
                id: "rsc_1".into(),
                output: "src".into(),
                is_error: false
            }
        );
        assert!(matches!(&steps[5], Step::Finished { ok: true, .. }));
        assert_eq!(steps.len(), 6, "the user's own message is not a step");
        let failed = GeminiCli
            .parse_line(r#"{"type":"result","status":"error","error":{"message":"budget spent"}}"#);
        assert!(
            matches!(&failed[0], Step::Finished { ok: false, summary, .. } if summary == "budget spent")
        );
    }

    #[test]
    fn prepare_selects_api_key_auth_against_the_gateway() {
        let home = tempfile::tempdir().unwrap();
        let launch = GeminiCli
            .prepare(&Setup {
                token: "ppgw-1",
                model: "m-1",
                program: Path::new("/opt/gemini"),
                prompt: "add bar",
                resume: Some("4bdb"),
                ..test_setup(home.path())
            })
            .unwrap();
        assert_eq!(
            launch.command_line,
            "exec '/opt/gemini' -p 'add bar' -m 'm-1' -y -o stream-json --skip-trust --resume latest < /dev/null"
        );
        let settings: Value = serde_json::from_str(
            &std::fs::read_to_string(home.path().join(".gemini/settings.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            settings["security"]["auth"]["selectedType"],
            "gemini-api-key"
        );
        let env: std::collections::HashMap<_, _> = launch.env.into_iter().collect();
        assert_eq!(env["GOOGLE_GEMINI_BASE_URL"], "http://127.0.0.1:4141");
        assert_eq!(env["GEMINI_API_KEY"], "ppgw-1");
    }
}
