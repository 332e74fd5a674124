//! mini-swe-agent (`mini-swe-agent` on PyPI), headless: `mini -t TASK -y
//! --exit-immediately -o FILE`. It speaks OpenAI Chat Completions through
//! litellm (`OPENAI_API_BASE`), has a single bash tool, and ends when a
//! command prints its completion marker. Its terminal output is for people;
//! its steps come from the trajectory file it writes at the end.

use super::{About, ExternalAgent, Launch, Setup, Step, cut, env_of, shell_quote};
use crate::config::Protocol;
use serde_json::Value;

/// Longest tool result kept in a step.
const MAX_RESULT: usize = 4096;

/// The trajectory's file in the private home.
const TRAJECTORY: &str = "trajectory.json";

/// The mini-swe-agent adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct MiniSweAgent;

impl ExternalAgent for MiniSweAgent {
    fn about(&self) -> About {
        About {
            name: "mini-swe-agent",
            program: "mini",
            install_hint: "pip install mini-swe-agent",
            protocol: Protocol::Openai,
        }
    }

    fn version_args(&self) -> &[&str] {
        // No `--version`: its help starts "This is mini-swe-agent version X".
        &["--help"]
    }

    fn prepare(&self, setup: &Setup<'_>) -> Result<Launch, String> {
        let line = format!(
            "exec {} -t {} -m {} -y --exit-immediately --cost-limit 0 -o {} < /dev/null",
            shell_quote(&setup.program.to_string_lossy()),
            shell_quote(setup.prompt),
            shell_quote(&format!("openai/{}", setup.model)),
            shell_quote(&format!("{}/{TRAJECTORY}", setup.sandbox_home)),
        );
        let gateway_v1 = format!("{}/v1", setup.gateway_url);
        let env = env_of(&[
            ("OPENAI_API_BASE", gateway_v1.as_str()),
            ("OPENAI_BASE_URL", gateway_v1.as_str()),
            ("OPENAI_API_KEY", setup.token),
            // Configured here, not by its interactive first-run setup.
            ("MSWEA_CONFIGURED", "true"),
            // The gateway counts cost; litellm does not know local models.
            ("MSWEA_COST_TRACKING", "ignore_errors"),
            // litellm would fetch its price list from the network.
            ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
            ("LITELLM_TELEMETRY", "False"),
            ("NO_COLOR", "1"),
        ]);
        Ok(Launch {
            command_line: line,
            env,
        })
    }

    fn parse_line(&self, _line: &str) -> Vec<Step> {
        Vec::new()
    }

    fn trajectory(&self) -> Option<&str> {
        Some(TRAJECTORY)
    }

    fn parse_trajectory(&self, text: &str) -> Vec<Step> {
        let Ok(record) = serde_json::from_str::<Value>(text) else {
            return Vec::new();
        };
        let mut steps = vec![Step::Started {
            session: None,
            model: record["info"]["config"]["model"]["model_name"]
                .as_str()
                .map(str::to_owned),
        }];
        for message in record["messages"].as_array().into_iter().flatten() {
            match message["role"].as_str() {
                Some("assistant") => {
                    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
                        steps.push(Step::Message {
                            text: text.to_owned(),
                        });
                    }
                    for call in message["tool_calls"].as_array().into_iter().flatten() {
                        let input = call["function"]["arguments"]
                            .as_str()
                            .and_then(|a| serde_json::from_str(a).ok())
                            .unwrap_or(Value::Null);
                        steps.push(Step::ToolCall {
                            id: call["id"].as_str().unwrap_or_default().to_owned(),
                            tool: call["function"]["name"]
                                .as_str()
                                .unwrap_or("bash")
                                .to_owned(),
                            input,
                        });
                    }
                }
                Some("tool") => {
                    let content = message["content"].as_str().unwrap_or_default();
                    let observed: Value = serde_json::from_str(content).unwrap_or(Value::Null);
                    let code = observed["returncode"].as_i64();
                    steps.push(Step::ToolResult {
                        id: message["tool_call_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        output: cut(observed["output"].as_str().unwrap_or(content), MAX_RESULT),
                        is_error: code.is_some_and(|c| c != 0),
                    });
                }
                _ => {}
            }
        }
        let status = record["info"]["exit_status"].as_str().unwrap_or("ended");
        let submission = record["info"]["submission"].as_str().unwrap_or_default();
        steps.push(Step::Finished {
            ok: status == "Submitted",
            summary: if submission.trim().is_empty() {
                status.to_owned()
            } else {
                format!("{status}: {}", cut(submission.trim(), MAX_RESULT))
            },
            session: None,
            turns: record["info"]["model_stats"]["api_calls"].as_u64(),
        });
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::test_setup;
    use std::path::Path;

    /// A trajectory as mini-swe-agent 2.4 writes it (trimmed to the fields
    /// read).
    const RECORDED: &str = r#"{"info":{"model_stats":{"instance_cost":0.0,"api_calls":2},"config":{"model":{"model_name":"openai/m"}},"mini_version":"2.4.6","exit_status":"Submitted","submission":""},
"messages":[{"role":"system","content":"You are a helpful assistant"},{"role":"user","content":"Please solve this issue: add bar"},
{"role":"assistant","content":"Adding bar.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"bash","arguments":"{\"command\": \"printf 'pub fn bar() {}\\\\n' >> src/lib.rs\"}"}}]},
{"role":"tool","tool_call_id":"call_1","content":"{\n  \"returncode\": 0,\n  \"output\": \"\"\n}"},
{"role":"assistant","content":"","tool_calls":[{"id":"call_2","type":"function","function":{"name":"bash","arguments":"{\"command\": \"echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\"}"}}]},
{"role":"exit","content":""}],"trajectory_format":"mini-swe-agent-1.1"}"#;

    #[test]
    fn a_recorded_trajectory_becomes_steps() {
        let steps = MiniSweAgent.parse_trajectory(RECORDED);
        assert_eq!(
            steps[0],
            Step::Started {
                session: None,
                model: Some("openai/m".into())
            }
        );
        assert_eq!(
            steps[1],
            Step::Message {
                text: "Adding bar.".into()
            }
        );
        assert!(
            matches!(&steps[2], Step::ToolCall { tool, input, .. } if tool == "bash" && input["command"].as_str().unwrap().contains("src/lib.rs"))
        );
        assert!(matches!(
            &steps[3],
            Step::ToolResult {
                is_error: false,
                ..
            }
        ));
        assert!(matches!(&steps[4], Step::ToolCall { .. }));
        assert_eq!(
            steps[5],
            Step::Finished {
                ok: true,
                summary: "Submitted".into(),
                session: None,
                turns: Some(2)
            }
        );
        assert!(MiniSweAgent.parse_trajectory("not json").is_empty());
    }

    #[test]
    fn prepare_points_litellm_at_the_gateway() {
        let home = tempfile::tempdir().unwrap();
        let launch = MiniSweAgent
            .prepare(&Setup {
                token: "ppgw-1",
                model: "m-1",
                program: Path::new("/venv/bin/mini"),
                prompt: "add 'bar'",
                ..test_setup(home.path())
            })
            .unwrap();
        assert!(launch.command_line.contains("-t 'add '\\''bar'\\'''"));
        assert!(launch.command_line.contains("-m 'openai/m-1'"));
        assert!(
            launch
                .command_line
                .contains("-o '/tmp/home/trajectory.json'")
        );
        let env: std::collections::HashMap<_, _> = launch.env.into_iter().collect();
        assert_eq!(env["OPENAI_API_BASE"], "http://127.0.0.1:4141/v1");
        assert_eq!(env["OPENAI_API_KEY"], "ppgw-1");
    }
}
