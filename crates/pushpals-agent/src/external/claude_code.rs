//! Claude Code (`@anthropic-ai/claude-code`), headless: `claude -p PROMPT
//! --output-format stream-json --verbose`. It speaks Anthropic Messages to
//! `ANTHROPIC_BASE_URL`; its pre-tool-use hook sends every tool call to
//! Push Pals's judge, whose answer replaces its own permission prompt.

use super::{About, ExternalAgent, Launch, Setup, Step, cut, env_of, shell_quote, write_private};
use crate::config::Protocol;
use crate::gateway::{ToolUse, Verdict};
use serde_json::{Value, json};

/// Longest tool result kept in a step.
const MAX_RESULT: usize = 4096;

/// The gateway path its hook calls.
pub const HOOK_PATH: &str = "/pushpals/v1/hooks/claude-code";

/// The Claude Code adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaudeCode;

impl ExternalAgent for ClaudeCode {
    fn about(&self) -> About {
        About {
            name: "claude-code",
            program: "claude",
            install_hint: "npm install -g @anthropic-ai/claude-code",
            protocol: Protocol::Anthropic,
        }
    }

    fn prepare(&self, setup: &Setup<'_>) -> Result<Launch, String> {
        let mut settings = json!({
            "autoUpdates": false,
            "includeCoAuthoredBy": false,
            "cleanupPeriodDays": 3650,
        });
        let permissions = match setup.hook {
            // Every tool call goes to the judge; its allow or deny is final.
            Some(hook) => {
                settings["hooks"] = json!({
                    "PreToolUse": [{
                        "matcher": "*",
                        "hooks": [{ "type": "command", "command": hook, "timeout": 86_400 }],
                    }],
                });
                "default"
            }
            // No judge: edits inside the sandbox only; anything that would
            // prompt is refused, as headless prompts are.
            None => "acceptEdits",
        };
        write_private(
            &setup.home.join(".claude/settings.json"),
            &serde_json::to_string_pretty(&settings).map_err(|e| e.to_string())?,
        )?;
        write_private(
            &setup.home.join(".claude.json"),
            &json!({ "hasCompletedOnboarding": true, "autoUpdates": false }).to_string(),
        )?;
        let mut line = format!(
            "exec {} -p {} --output-format stream-json --verbose --model {} --permission-mode {permissions}",
            shell_quote(&setup.program.to_string_lossy()),
            shell_quote(setup.prompt),
            shell_quote(setup.model),
        );
        if let Some(session) = setup.resume {
            line.push_str(&format!(" --resume {}", shell_quote(session)));
        }
        line.push_str(" < /dev/null");
        let env = env_of(&[
            ("ANTHROPIC_BASE_URL", setup.gateway_url),
            ("ANTHROPIC_API_KEY", setup.token),
            ("PUSHPALS_GATEWAY_TOKEN", setup.token),
            ("ANTHROPIC_SMALL_FAST_MODEL", setup.model),
            ("ANTHROPIC_DEFAULT_HAIKU_MODEL", setup.model),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("DISABLE_AUTOUPDATER", "1"),
            ("DISABLE_TELEMETRY", "1"),
            ("DISABLE_ERROR_REPORTING", "1"),
            ("DISABLE_BUG_COMMAND", "1"),
            (
                "CLAUDE_CONFIG_DIR",
                &format!("{}/.claude", setup.sandbox_home),
            ),
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
        let session = event["session_id"].as_str().map(str::to_owned);
        match (event["type"].as_str(), event["subtype"].as_str()) {
            (Some("system"), Some("init")) => vec![Step::Started {
                session,
                model: event["model"].as_str().map(str::to_owned),
            }],
            (Some("assistant"), _) => blocks(&event)
                .filter_map(|block| match block["type"].as_str() {
                    Some("text") => Some(Step::Message {
                        text: block["text"].as_str().unwrap_or_default().to_owned(),
                    }),
                    Some("tool_use") => Some(Step::ToolCall {
                        id: block["id"].as_str().unwrap_or_default().to_owned(),
                        tool: block["name"].as_str().unwrap_or_default().to_owned(),
                        input: block["input"].clone(),
                    }),
                    _ => None,
                })
                .collect(),
            (Some("user"), _) => blocks(&event)
                .filter(|block| block["type"] == "tool_result")
                .map(|block| Step::ToolResult {
                    id: block["tool_use_id"].as_str().unwrap_or_default().to_owned(),
                    output: cut(&crate::conversation::text_of(&block["content"]), MAX_RESULT),
                    is_error: block["is_error"].as_bool().unwrap_or(false),
                })
                .collect(),
            (Some("result"), subtype) => {
                let ok =
                    subtype == Some("success") && !event["is_error"].as_bool().unwrap_or(false);
                let summary = event["result"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| {
                        event["errors"].as_array().map(|e| {
                            e.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                    })
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| subtype.unwrap_or("ended").to_owned());
                vec![Step::Finished {
                    ok,
                    summary,
                    session,
                    turns: event["num_turns"].as_u64(),
                }]
            }
            _ => Vec::new(),
        }
    }
}

fn blocks(event: &Value) -> impl Iterator<Item = &Value> {
    event["message"]["content"]
        .as_array()
        .map(|blocks| blocks.iter())
        .into_iter()
        .flatten()
}

/// The tool call a pre-tool-use hook asks about.
pub fn hook_tool_use(hook: &Value) -> Option<ToolUse> {
    Some(ToolUse {
        tool: hook["tool_name"].as_str()?.to_owned(),
        input: hook["tool_input"].clone(),
    })
}

/// The hook's answer to Claude Code.
pub fn hook_answer(verdict: &Verdict) -> Value {
    let (decision, reason) = match verdict {
        Verdict::Allow(reason) => ("allow", reason.as_str()),
        Verdict::Deny(reason) => ("deny", reason.as_str()),
    };
    json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::test_setup;
    use std::path::Path;

    /// A stream as Claude Code writes it (trimmed to the fields read).
    const RECORDED: &str = r#"{"type":"system","subtype":"init","cwd":"/w","session_id":"s-1","tools":["Bash","Edit"],"model":"real-model","permissionMode":"default"}
{"type":"assistant","message":{"id":"m1","role":"assistant","content":[{"type":"text","text":"I'll fix it."},{"type":"tool_use","id":"tu1","name":"Edit","input":{"file_path":"/w/a.txt","old_string":"a","new_string":"b"}}]},"session_id":"s-1"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"tu1","type":"tool_result","content":[{"type":"text","text":"The file was updated"}]}]},"session_id":"s-1"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"tu2","type":"tool_result","content":"denied by policy","is_error":true}]},"session_id":"s-1"}
not json at all
{"type":"result","subtype":"success","is_error":false,"duration_ms":900,"num_turns":3,"result":"Changed a to b.","session_id":"s-1","total_cost_usd":0.01}"#;

    #[test]
    fn a_recorded_stream_becomes_steps() {
        let steps: Vec<Step> = RECORDED
            .lines()
            .flat_map(|line| ClaudeCode.parse_line(line))
            .collect();
        assert_eq!(
            steps[0],
            Step::Started {
                session: Some("s-1".into()),
                model: Some("real-model".into())
            }
        );
        assert_eq!(
            steps[1],
            Step::Message {
                text: "I'll fix it.".into()
            }
        );
        assert!(
            matches!(&steps[2], Step::ToolCall { tool, input, .. } if tool == "Edit" && input["file_path"] == "/w/a.txt")
        );
        assert_eq!(
            steps[3],
            Step::ToolResult {
                id: "tu1".into(),
                output: "The file was updated".into(),
                is_error: false
            }
        );
        assert!(
            matches!(&steps[4], Step::ToolResult { is_error: true, output, .. } if output == "denied by policy")
        );
        assert_eq!(
            steps[5],
            Step::Finished {
                ok: true,
                summary: "Changed a to b.".into(),
                session: Some("s-1".into()),
                turns: Some(3)
            }
        );
        assert_eq!(steps.len(), 6);
    }

    #[test]
    fn a_failed_run_says_why() {
        let steps = ClaudeCode.parse_line(
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["API Error: 400 budget spent"],"session_id":"s"}"#,
        );
        assert!(
            matches!(&steps[0], Step::Finished { ok: false, summary, .. } if summary.contains("budget spent"))
        );
    }

    #[test]
    fn prepare_writes_a_private_config_with_the_hook_and_quotes_the_prompt() {
        let home = tempfile::tempdir().unwrap();
        let setup = Setup {
            token: "ppgw-abc",
            model: "m-1",
            program: Path::new("/opt/claude"),
            prompt: "fix 'it'; rm -rf /",
            hook: Some("/run/pushpals/helper hook /x"),
            resume: Some("s-1"),
            ..test_setup(home.path())
        };
        let launch = ClaudeCode.prepare(&setup).unwrap();
        assert!(
            launch
                .command_line
                .starts_with("exec '/opt/claude' -p 'fix '\\''it'\\''; rm -rf /'")
        );
        assert!(launch.command_line.contains("--resume 's-1'"));
        assert!(launch.command_line.contains("--permission-mode default"));
        let env: std::collections::HashMap<_, _> = launch.env.into_iter().collect();
        assert_eq!(env["ANTHROPIC_API_KEY"], "ppgw-abc");
        assert_eq!(env["ANTHROPIC_BASE_URL"], "http://127.0.0.1:4141");
        let settings: Value = serde_json::from_str(
            &std::fs::read_to_string(home.path().join(".claude/settings.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"],
            "/run/pushpals/helper hook /x"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join(".claude/settings.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the config is private");
    }

    #[test]
    fn hook_questions_and_answers() {
        let asked = hook_tool_use(&json!({
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": { "command": "git push" },
        }))
        .unwrap();
        assert_eq!(asked.tool, "Bash");
        assert_eq!(asked.input["command"], "git push");
        assert!(hook_tool_use(&json!({})).is_none());
        let answer = hook_answer(&Verdict::Deny("push needs approval".into()));
        assert_eq!(answer["hookSpecificOutput"]["permissionDecision"], "deny");
        assert_eq!(
            answer["hookSpecificOutput"]["permissionDecisionReason"],
            "push needs approval"
        );
    }
}
