//! Codex CLI (`@openai/codex`), headless: `codex exec --json PROMPT`. It
//! speaks OpenAI Responses to a provider named in `$CODEX_HOME/config.toml`
//! and writes one JSON event per line. Its own sandbox is off
//! (`danger-full-access`) because Push Pals's sandbox is the boundary, and
//! it never asks (`approval_policy = "never"`): its commands are confined
//! by the sandbox, not judged one by one.

use super::{About, ExternalAgent, Launch, Setup, Step, cut, env_of, shell_quote, write_private};
use crate::config::Protocol;
use serde_json::{Value, json};

/// Longest command output kept in a step.
const MAX_RESULT: usize = 4096;

/// The Codex CLI adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codex;

/// A TOML string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

impl ExternalAgent for Codex {
    fn about(&self) -> About {
        About {
            name: "codex",
            program: "codex",
            install_hint: "npm install -g @openai/codex",
            protocol: Protocol::OpenaiResponses,
        }
    }

    fn prepare(&self, setup: &Setup<'_>) -> Result<Launch, String> {
        // JSON strings are valid TOML basic strings.
        let config = format!(
            "model = {model}\n\
             model_provider = \"pushpals\"\n\
             approval_policy = \"never\"\n\
             sandbox_mode = \"danger-full-access\"\n\
             check_for_update_on_startup = false\n\
             \n\
             [model_providers.pushpals]\n\
             name = \"Push Pals gateway\"\n\
             base_url = {base}\n\
             env_key = \"PUSHPALS_GATEWAY_TOKEN\"\n\
             wire_api = \"responses\"\n\
             \n\
             [analytics]\n\
             enabled = false\n",
            model = toml_string(setup.model),
            base = toml_string(&format!("{}/v1", setup.gateway_url)),
        );
        write_private(&setup.home.join(".codex/config.toml"), &config)?;
        let program = shell_quote(&setup.program.to_string_lossy());
        let line = match setup.resume {
            Some(session) => format!(
                "exec {program} exec resume --json --skip-git-repo-check {} {} < /dev/null",
                shell_quote(session),
                shell_quote(setup.prompt)
            ),
            None => format!(
                "exec {program} exec --json --skip-git-repo-check {} < /dev/null",
                shell_quote(setup.prompt)
            ),
        };
        let codex_home = format!("{}/.codex", setup.sandbox_home);
        let env = env_of(&[
            ("CODEX_HOME", codex_home.as_str()),
            ("PUSHPALS_GATEWAY_TOKEN", setup.token),
            ("NO_COLOR", "1"),
        ]);
        Ok(Launch {
            command_line: line,
            env,
        })
    }

    fn parse_line(&self, line: &str) -> Vec<Step> {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Vec::new();
        };
        let item = &event["item"];
        let id = item["id"].as_str().unwrap_or_default().to_owned();
        match (event["type"].as_str(), item["type"].as_str()) {
            (Some("thread.started"), _) => vec![Step::Started {
                session: event["thread_id"].as_str().map(str::to_owned),
                model: None,
            }],
            (Some("item.started"), Some("command_execution")) => vec![Step::ToolCall {
                id,
                tool: "shell".into(),
                input: json!({ "command": item["command"] }),
            }],
            (Some("item.completed"), Some("command_execution")) => vec![Step::ToolResult {
                id,
                output: cut(
                    item["aggregated_output"].as_str().unwrap_or_default(),
                    MAX_RESULT,
                ),
                is_error: item["exit_code"].as_i64() != Some(0),
            }],
            (Some("item.completed"), Some("file_change")) => vec![Step::ToolCall {
                id,
                tool: "file_change".into(),
                input: json!({
                    "changes": item["changes"],
                    "path": item["changes"][0]["path"],
                }),
            }],
            (Some("item.completed"), Some("agent_message")) => vec![Step::Message {
                text: item["text"].as_str().unwrap_or_default().to_owned(),
            }],
            (Some("item.completed"), Some("error")) | (Some("error"), _) => {
                let message = item["message"]
                    .as_str()
                    .or(event["message"].as_str())
                    .unwrap_or_default();
                vec![Step::Message {
                    text: format!("(codex reported) {message}"),
                }]
            }
            (Some("turn.completed"), _) => vec![Step::Finished {
                ok: true,
                summary: String::new(),
                session: None,
                turns: None,
            }],
            (Some("turn.failed"), _) => vec![Step::Finished {
                ok: false,
                summary: event["error"]["message"]
                    .as_str()
                    .unwrap_or("the turn failed")
                    .to_owned(),
                session: None,
                turns: None,
            }],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::test_setup;
    use std::path::Path;

    /// A stream as `codex exec --json` 0.169 writes it.
    const RECORDED: &str = r#"{"type":"thread.started","thread_id":"01a2-thread"}
{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `m` not found."}}
{"type":"turn.started"}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc ls","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc ls","aggregated_output":"src\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Added bar."}}
{"type":"turn.completed","usage":{"input_tokens":20,"cached_input_tokens":0,"output_tokens":10}}"#;

    #[test]
    fn a_recorded_stream_becomes_steps() {
        let steps: Vec<Step> = RECORDED
            .lines()
            .flat_map(|line| Codex.parse_line(line))
            .collect();
        assert_eq!(
            steps[0],
            Step::Started {
                session: Some("01a2-thread".into()),
                model: None
            }
        );
        assert!(matches!(&steps[1], Step::Message { text } if text.contains("metadata")));
        assert!(
            matches!(&steps[2], Step::ToolCall { tool, input, .. } if tool == "shell" && input["command"] == "/bin/bash -lc ls")
        );
        assert_eq!(
            steps[3],
            Step::ToolResult {
                id: "item_1".into(),
                output: "src\n".into(),
                is_error: false
            }
        );
        assert_eq!(
            steps[4],
            Step::Message {
                text: "Added bar.".into()
            }
        );
        assert!(matches!(&steps[5], Step::Finished { ok: true, .. }));
        let failed =
            Codex.parse_line(r#"{"type":"turn.failed","error":{"message":"budget spent"}}"#);
        assert!(
            matches!(&failed[0], Step::Finished { ok: false, summary, .. } if summary == "budget spent")
        );
    }

    #[test]
    fn prepare_names_the_gateway_as_a_responses_provider() {
        let home = tempfile::tempdir().unwrap();
        let setup = Setup {
            token: "ppgw-1",
            model: "gpt-\"x\"",
            program: Path::new("/opt/codex"),
            prompt: "add bar",
            ..test_setup(home.path())
        };
        let launch = Codex.prepare(&setup).unwrap();
        assert_eq!(
            launch.command_line,
            "exec '/opt/codex' exec --json --skip-git-repo-check 'add bar' < /dev/null"
        );
        let config = std::fs::read_to_string(home.path().join(".codex/config.toml")).unwrap();
        let parsed: toml::Value = toml::from_str(&config).unwrap();
        assert_eq!(parsed["model"].as_str(), Some("gpt-\"x\""));
        assert_eq!(
            parsed["model_providers"]["pushpals"]["base_url"].as_str(),
            Some("http://127.0.0.1:4141/v1")
        );
        assert_eq!(
            parsed["model_providers"]["pushpals"]["wire_api"].as_str(),
            Some("responses")
        );
        let resumed = Codex
            .prepare(&Setup {
                resume: Some("01a2"),
                acp: false,
                ..setup
            })
            .unwrap();
        assert!(
            resumed
                .command_line
                .contains("exec resume --json --skip-git-repo-check '01a2' 'add bar'")
        );
    }
}
