//! Aider (`aider-chat` on PyPI), headless: `aider --message PROMPT
//! --yes-always`. It speaks OpenAI Chat Completions through litellm
//! (`--openai-api-base`), and its edits come back as text blocks
//! (search/replace) that it applies itself. It leaves git to Push Pals
//! (`--no-git`: the repository's git data is read-only in the sandbox) and
//! keeps its history files out of the worktree. Its terminal output is for people;
//! its steps come from the chat history it keeps in the private home.

use super::{About, ExternalAgent, Launch, Setup, Step, env_of, shell_quote};
use crate::config::Protocol;
use serde_json::json;

/// The chat history's file in the private home.
const HISTORY: &str = "aider.chat.md";

/// The Aider adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Aider;

impl ExternalAgent for Aider {
    fn about(&self) -> About {
        About {
            name: "aider",
            program: "aider",
            install_hint: "pip install aider-chat",
            protocol: Protocol::Openai,
        }
    }

    fn prepare(&self, setup: &Setup<'_>) -> Result<Launch, String> {
        let home = setup.sandbox_home;
        let line = format!(
            "exec {program} --message {prompt} --model {model} --openai-api-base {base} \
             --yes-always --no-git --no-auto-commits --no-dirty-commits --no-gitignore \
             --no-check-update --analytics-disable --no-show-release-notes \
             --no-show-model-warnings --no-pretty --no-fancy-input --edit-format diff \
             --map-tokens 0 --chat-history-file {history} --input-history-file {input} \
             < /dev/null",
            program = shell_quote(&setup.program.to_string_lossy()),
            prompt = shell_quote(setup.prompt),
            model = shell_quote(&format!("openai/{}", setup.model)),
            base = shell_quote(&format!("{}/v1", setup.gateway_url)),
            history = shell_quote(&format!("{home}/{HISTORY}")),
            input = shell_quote(&format!("{home}/aider.input.history")),
        );
        let env = env_of(&[
            ("OPENAI_API_KEY", setup.token),
            // litellm would fetch its price list from the network.
            ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
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
        Some(HISTORY)
    }

    fn parse_trajectory(&self, text: &str) -> Vec<Step> {
        let mut steps = vec![Step::Started {
            session: None,
            model: None,
        }];
        let mut said = String::new();
        let mut edits = 0;
        let flush = |said: &mut String, steps: &mut Vec<Step>| {
            let text = said.trim();
            if !text.is_empty() {
                steps.push(Step::Message {
                    text: text.to_owned(),
                });
            }
            said.clear();
        };
        for line in text.lines() {
            if line.starts_with("# aider chat started") || line.starts_with("#### ") {
                flush(&mut said, &mut steps);
            } else if let Some(note) = line.strip_prefix("> ") {
                flush(&mut said, &mut steps);
                if let Some(path) = note.strip_prefix("Applied edit to ") {
                    edits += 1;
                    steps.push(Step::ToolCall {
                        id: format!("edit_{edits}"),
                        tool: "edit".into(),
                        input: json!({ "path": path.trim() }),
                    });
                }
            } else {
                said.push_str(line);
                said.push('\n');
            }
        }
        flush(&mut said, &mut steps);
        let summary = steps
            .iter()
            .rev()
            .find_map(|step| match step {
                Step::Message { text } => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_default();
        steps.push(Step::Finished {
            ok: edits > 0 || !summary.is_empty(),
            summary,
            session: None,
            turns: None,
        });
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::test_setup;
    use std::path::Path;

    /// A chat history as Aider 0.86 writes it.
    const RECORDED: &str = "
# aider chat started at 2026-11-26 02:20:00

> Aider v0.86.2
> Model: openai/m with diff edit format

#### add bar to src/lib.rs

I'll add bar.

src/lib.rs
```rust
<<<<<<< SEARCH
pub fn foo() {}
=======
pub fn foo() {}
pub fn bar() {}
>>>>>>> REPLACE
```

> Tokens: 2.4k sent, 36 received.
> Applied edit to src/lib.rs
";

    #[test]
    fn a_recorded_history_becomes_steps() {
        let steps = Aider.parse_trajectory(RECORDED);
        assert!(matches!(&steps[0], Step::Started { .. }));
        assert!(
            matches!(&steps[1], Step::Message { text } if text.starts_with("I'll add bar.") && text.contains(">>>>>>> REPLACE"))
        );
        assert!(
            matches!(&steps[2], Step::ToolCall { tool, input, .. } if tool == "edit" && input["path"] == "src/lib.rs")
        );
        assert!(
            matches!(&steps[3], Step::Finished { ok: true, summary, .. } if summary.starts_with("I'll add bar."))
        );
        assert_eq!(steps.len(), 4, "{steps:?}");
    }

    #[test]
    fn prepare_keeps_history_out_of_the_worktree_and_points_at_the_gateway() {
        let home = tempfile::tempdir().unwrap();
        let launch = Aider
            .prepare(&Setup {
                token: "ppgw-1",
                model: "m-1",
                program: Path::new("/venv/bin/aider"),
                prompt: "add 'bar'",
                ..test_setup(home.path())
            })
            .unwrap();
        let line = &launch.command_line;
        assert!(line.contains("--message 'add '\\''bar'\\'''"), "{line}");
        assert!(line.contains("--openai-api-base 'http://127.0.0.1:4141/v1'"));
        assert!(line.contains("--chat-history-file '/tmp/home/aider.chat.md'"));
        assert!(line.contains("--no-auto-commits"));
        let env: std::collections::HashMap<_, _> = launch.env.into_iter().collect();
        assert_eq!(env["OPENAI_API_KEY"], "ppgw-1");
    }
}
