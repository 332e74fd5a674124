//! opencode (`opencode-ai`), headless: `opencode run --format json --model
//! P/M PROMPT`. It speaks OpenAI Chat Completions to an OpenAI-compatible
//! provider named in its JSON config (`baseURL`, `apiKey` from the
//! environment) and writes one JSON event per line. Its own permissions
//! allow edits and shell commands without asking; where the sandbox reaches
//! the gateway, a plugin asks Push Pals's judge before every tool call.

use super::{About, ExternalAgent, Launch, Setup, Step, cut, env_of, shell_quote, write_private};
use crate::config::Protocol;
use serde_json::{Value, json};

/// Longest tool output kept in a step.
const MAX_RESULT: usize = 4096;

/// The provider's name in opencode's config.
const PROVIDER: &str = "pushpals";

/// The judge plugin's file in the private home.
const PLUGIN: &str = ".config/opencode/pushpals-judge.js";

/// An opencode plugin that asks the gateway's judge before each tool call
/// (tools named as Claude Code names them, which the judge knows).
fn plugin(gateway_url: &str) -> String {
    let url = serde_json::to_string(&format!("{gateway_url}{}", crate::gateway::JUDGE_PATH))
        .unwrap_or_default();
    format!(
        r#"// Written by Push Pals: every tool call is judged before it runs.
const JUDGE = {url};
function question(tool, args) {{
  if (tool === "bash") return {{ tool: "Bash", input: {{ command: args.command || "" }} }};
  if (["edit", "write", "multiedit", "patch"].includes(tool))
    return {{ tool: "Write", input: {{ file_path: args.filePath || args.path || "" }} }};
  if (tool === "webfetch" || tool === "websearch") return {{ tool: "WebFetch", input: args }};
  return {{ tool, input: args }};
}}
export const PushPalsJudge = async () => ({{
  "tool.execute.before": async (input, output) => {{
    let answer;
    try {{
      const response = await fetch(JUDGE, {{
        method: "POST",
        headers: {{ "content-type": "application/json",
                   authorization: "Bearer " + process.env.PUSHPALS_GATEWAY_TOKEN }},
        body: JSON.stringify(question(input.tool, output.args || {{}})),
      }});
      answer = await response.json();
      if (!response.ok) throw new Error((answer.error && answer.error.message) || String(response.status));
    }} catch (error) {{
      throw new Error("Push Pals could not judge this tool call, so it is blocked: " + error.message);
    }}
    if (answer.decision !== "allow") throw new Error("Push Pals refused this tool call: " + answer.reason);
  }},
}});
"#
    )
}

/// The opencode adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opencode;

impl ExternalAgent for Opencode {
    fn about(&self) -> About {
        About {
            name: "opencode",
            program: "opencode",
            install_hint: "npm install -g opencode-ai",
            protocol: Protocol::Openai,
        }
    }

    fn prepare(&self, setup: &Setup<'_>) -> Result<Launch, String> {
        let model = format!("{PROVIDER}/{}", setup.model);
        let mut config = json!({
            "provider": {
                PROVIDER: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Push Pals gateway",
                    "options": {
                        "baseURL": format!("{}/v1", setup.gateway_url),
                        "apiKey": "{env:PUSHPALS_GATEWAY_TOKEN}",
                    },
                    "models": { setup.model: { "name": setup.model, "tool_call": true } },
                },
            },
            "model": model,
            "small_model": model,
            "autoupdate": false,
            "share": "disabled",
            "permission": { "edit": "allow", "bash": "allow", "webfetch": "deny" },
        });
        if setup.hook.is_some() {
            // Where the sandbox reaches the gateway, a plugin asks the task's
            // judge before every tool call; a refusal or no answer blocks it.
            write_private(&setup.home.join(PLUGIN), &plugin(setup.gateway_url))?;
            config["plugin"] = json!([format!("file://{}/{PLUGIN}", setup.sandbox_home)]);
        }
        write_private(
            &setup.home.join(".config/opencode/opencode.json"),
            &serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?,
        )?;
        // A title from the prompt, not from a model call.
        let mut line = format!(
            "exec {} run --format json --model {} --title {}",
            shell_quote(&setup.program.to_string_lossy()),
            shell_quote(&model),
            shell_quote(&cut(setup.prompt.lines().next().unwrap_or("task"), 60)),
        );
        if let Some(session) = setup.resume {
            line.push_str(&format!(" --session {}", shell_quote(session)));
        }
        line.push_str(&format!(" {} < /dev/null", shell_quote(setup.prompt)));
        let home = setup.sandbox_home;
        let dirs =
            [".config", ".local/share", ".cache", ".local/state"].map(|d| format!("{home}/{d}"));
        let env = env_of(&[
            ("XDG_CONFIG_HOME", dirs[0].as_str()),
            ("XDG_DATA_HOME", dirs[1].as_str()),
            ("XDG_CACHE_HOME", dirs[2].as_str()),
            ("XDG_STATE_HOME", dirs[3].as_str()),
            ("PUSHPALS_GATEWAY_TOKEN", setup.token),
            ("OPENCODE_DISABLE_MODELS_FETCH", "1"),
            ("OPENCODE_DISABLE_AUTOUPDATE", "1"),
            ("OPENCODE_DISABLE_LSP_DOWNLOAD", "1"),
            // It installs its plugin package with npm when a plugin is
            // configured; without network that must fail at once, not
            // after a minute of retries (the judge plugin needs nothing).
            ("npm_config_offline", "true"),
            ("npm_config_fetch_retries", "0"),
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
        let part = &event["part"];
        match event["type"].as_str() {
            Some("step_start") => vec![Step::Started {
                session: event["sessionID"].as_str().map(str::to_owned),
                model: None,
            }],
            Some("text") => vec![Step::Message {
                text: part["text"].as_str().unwrap_or_default().to_owned(),
            }],
            Some("tool_use") => {
                let state = &part["state"];
                let id = part["callID"].as_str().unwrap_or_default().to_owned();
                vec![
                    Step::ToolCall {
                        id: id.clone(),
                        tool: part["tool"].as_str().unwrap_or_default().to_owned(),
                        input: state["input"].clone(),
                    },
                    Step::ToolResult {
                        id,
                        output: cut(
                            state["output"]
                                .as_str()
                                .or(state["error"].as_str())
                                .unwrap_or_default(),
                            MAX_RESULT,
                        ),
                        is_error: state["status"] == "error"
                            || state["metadata"]["exit"].as_i64().is_some_and(|c| c != 0),
                    },
                ]
            }
            Some("step_finish") if part["reason"] == "stop" => vec![Step::Finished {
                ok: true,
                summary: String::new(),
                session: event["sessionID"].as_str().map(str::to_owned),
                turns: None,
            }],
            Some("error") => vec![Step::Finished {
                ok: false,
                summary: event["error"]["data"]["message"]
                    .as_str()
                    .or(event["error"]["message"].as_str())
                    .or(event["error"]["name"].as_str())
                    .unwrap_or("opencode reported an error")
                    .to_owned(),
                session: event["sessionID"].as_str().map(str::to_owned),
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

    /// A stream as `opencode run --format json` 1.18 writes it (trimmed).
    const RECORDED: &str = r#"{"type":"step_start","sessionID":"ses_1","part":{"type":"step-start"}}
{"type":"tool_use","sessionID":"ses_1","part":{"type":"tool","tool":"bash","callID":"call_1","state":{"status":"completed","input":{"command":"ls"},"output":"src","metadata":{"exit":0}}}}
{"type":"step_finish","sessionID":"ses_1","part":{"reason":"tool-calls","type":"step-finish"}}
{"type":"step_start","sessionID":"ses_1","part":{"type":"step-start"}}
{"type":"text","sessionID":"ses_1","part":{"type":"text","text":"Added bar."}}
{"type":"step_finish","sessionID":"ses_1","part":{"reason":"stop","type":"step-finish"}}"#;

    #[test]
    fn a_recorded_stream_becomes_steps() {
        let steps: Vec<Step> = RECORDED
            .lines()
            .flat_map(|line| Opencode.parse_line(line))
            .collect();
        assert_eq!(
            steps[0],
            Step::Started {
                session: Some("ses_1".into()),
                model: None
            }
        );
        assert!(
            matches!(&steps[1], Step::ToolCall { tool, input, .. } if tool == "bash" && input["command"] == "ls")
        );
        assert_eq!(
            steps[2],
            Step::ToolResult {
                id: "call_1".into(),
                output: "src".into(),
                is_error: false
            }
        );
        assert!(matches!(&steps[3], Step::Started { .. }));
        assert_eq!(
            steps[4],
            Step::Message {
                text: "Added bar.".into()
            }
        );
        assert!(
            matches!(&steps[5], Step::Finished { ok: true, session: Some(s), .. } if s == "ses_1")
        );
        let failed = Opencode.parse_line(
            r#"{"type":"error","sessionID":"ses_1","error":{"name":"APIError","data":{"message":"budget spent"}}}"#,
        );
        assert!(
            matches!(&failed[0], Step::Finished { ok: false, summary, .. } if summary == "budget spent")
        );
    }

    #[test]
    fn prepare_names_the_gateway_as_an_openai_compatible_provider() {
        let home = tempfile::tempdir().unwrap();
        let launch = Opencode
            .prepare(&Setup {
                token: "ppgw-1",
                model: "m-1",
                program: Path::new("/opt/opencode"),
                prompt: "add bar",
                resume: Some("ses_1"),
                ..test_setup(home.path())
            })
            .unwrap();
        assert_eq!(
            launch.command_line,
            "exec '/opt/opencode' run --format json --model 'pushpals/m-1' --title 'add bar' --session 'ses_1' 'add bar' < /dev/null"
        );
        let config: Value = serde_json::from_str(
            &std::fs::read_to_string(home.path().join(".config/opencode/opencode.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            config["provider"]["pushpals"]["options"]["baseURL"],
            "http://127.0.0.1:4141/v1"
        );
        assert_eq!(config["small_model"], "pushpals/m-1");
        assert!(
            !config.to_string().contains("ppgw-1"),
            "the token comes from the environment"
        );
    }

    #[test]
    fn with_the_gateway_a_judge_plugin_is_written_and_loaded() {
        let home = tempfile::tempdir().unwrap();
        Opencode
            .prepare(&Setup {
                token: "ppgw-1",
                model: "m-1",
                program: Path::new("/opt/opencode"),
                prompt: "add bar",
                hook: Some("/run/pushpals/helper hook"),
                ..test_setup(home.path())
            })
            .unwrap();
        let config: Value = serde_json::from_str(
            &std::fs::read_to_string(home.path().join(".config/opencode/opencode.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            config["plugin"][0],
            "file:///tmp/home/.config/opencode/pushpals-judge.js"
        );
        let plugin = std::fs::read_to_string(home.path().join(PLUGIN)).unwrap();
        assert!(plugin.contains("\"http://127.0.0.1:4141/pushpals/v1/judge\""));
        assert!(
            !plugin.contains("ppgw-1"),
            "the token comes from the environment"
        );
        // It is valid JavaScript (an ES module).
        let module = home.path().join("check.mjs");
        std::fs::write(&module, &plugin).unwrap();
        let checked = std::process::Command::new("node")
            .arg("--check")
            .arg(&module)
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}
