//! Any command as an agent: a configured command line, the prompt in
//! `$PUSHPALS_PROMPT` (and on stdin), the gateway in `$OPENAI_BASE_URL`
//! and `$ANTHROPIC_BASE_URL` with the task token as both keys. Its output
//! is logged as it comes and the worktree's diff is the result.

use super::{About, ExternalAgent, Launch, Setup, Step, env_of, shell_quote, write_private};
use crate::config::Protocol;

/// A configured command line.
#[derive(Debug, Clone)]
pub struct AnyCommand {
    name: String,
    command: String,
}

impl AnyCommand {
    /// The agent `name` running `command`.
    pub fn new(name: &str, command: &str) -> Result<Self, String> {
        if command.trim().is_empty() {
            return Err(format!(
                "[agents.{name}] command is empty; write the command line to run"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            command: command.to_owned(),
        })
    }
}

impl ExternalAgent for AnyCommand {
    fn about(&self) -> About {
        About {
            name: "command",
            program: "sh",
            install_hint: "apt-get install dash",
            protocol: Protocol::Openai,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn version_args(&self) -> &[&str] {
        &[]
    }

    fn prepare(&self, setup: &Setup<'_>) -> Result<Launch, String> {
        let prompt_file = setup.home.join("prompt.txt");
        write_private(&prompt_file, setup.prompt)?;
        let line = format!(
            "{{ {}\n}} < {}",
            self.command,
            shell_quote(&format!("{}/prompt.txt", setup.sandbox_home))
        );
        let gateway_v1 = format!("{}/v1", setup.gateway_url);
        let env = env_of(&[
            ("PUSHPALS_PROMPT", setup.prompt),
            ("PUSHPALS_GATEWAY_TOKEN", setup.token),
            ("PUSHPALS_MODEL", setup.model),
            ("OPENAI_BASE_URL", &gateway_v1),
            ("OPENAI_API_BASE", &gateway_v1),
            ("OPENAI_API_KEY", setup.token),
            ("ANTHROPIC_BASE_URL", setup.gateway_url),
            ("ANTHROPIC_API_KEY", setup.token),
        ]);
        Ok(Launch {
            command_line: line,
            env,
        })
    }

    fn parse_line(&self, _line: &str) -> Vec<Step> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::test_setup;
    use std::path::Path;

    #[test]
    fn the_prompt_arrives_on_stdin_and_in_the_environment() {
        let home = tempfile::tempdir().unwrap();
        let agent = AnyCommand::new("mine", "cat; echo \"[$PUSHPALS_PROMPT]\"").unwrap();
        let setup = Setup {
            sandbox_home: &home.path().to_string_lossy(),
            token: "ppgw-1",
            model: "m",
            program: Path::new("/bin/sh"),
            prompt: "add a 'test'",
            ..test_setup(home.path())
        };
        let launch = agent.prepare(&setup).unwrap();
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&launch.command_line)
            .envs(launch.env)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            "add a 'test'[add a 'test']\n"
        );
        assert!(AnyCommand::new("x", " ").is_err());
    }
}
