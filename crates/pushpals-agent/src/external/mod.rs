//! Adapters for external agent CLIs (Claude Code, Codex, Gemini CLI,
//! opencode, Aider, mini-swe-agent, OpenHands, any command): how to find
//! one, configure it in a private home to reach its model only through the
//! gateway, start it headless on a task's prompt, and read its output
//! stream as steps. The orchestrator runs the launch line in the task's
//! sandbox, records the steps as events, and judges what the agent's hooks
//! ask (see [`crate::gateway::Judge`]).
//!
//! Over 400 lines: the types and helpers every adapter shares (steps, launch, quoting, install
//! roots); each agent is its own module.

pub mod acp;
mod aider;
pub mod claude_code;
mod codex;
mod command;
mod gemini_cli;
mod mini_swe_agent;
mod opencode;
mod openhands;

pub use aider::Aider;
pub use claude_code::ClaudeCode;
pub use codex::Codex;
pub use command::AnyCommand;
pub use gemini_cli::GeminiCli;
pub use mini_swe_agent::MiniSweAgent;
pub use opencode::Opencode;
pub use openhands::OpenHands;

use crate::config::Protocol;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What an adapter needs to configure and start its agent.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    /// The private home as the orchestrator sees it; configuration files go
    /// here.
    pub home: &'a Path,
    /// The same directory as the agent sees it inside the sandbox (`$HOME`).
    pub sandbox_home: &'a str,
    /// The gateway's base URL inside the sandbox.
    pub gateway_url: &'a str,
    /// The task's gateway token, the agent's only "API key".
    pub token: &'a str,
    /// The provider's model name (the gateway puts it in either way).
    pub model: &'a str,
    /// The agent's program, by absolute path.
    pub program: &'a Path,
    /// What to do.
    pub prompt: &'a str,
    /// An in-sandbox command line that judges one tool call the agent is
    /// about to make (reads the hook's JSON on stdin), when the agent has a
    /// hook for it.
    pub hook: Option<&'a str>,
    /// The agent's own session to resume (a follow-up run).
    pub resume: Option<&'a str>,
    /// Start it in its Agent Client Protocol mode: the prompt comes through
    /// the session on its standard input, not on the command line.
    pub acp: bool,
}

/// How to start the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The command line run by `/bin/sh -c` in the worktree.
    pub command_line: String,
    /// Environment variables for it.
    pub env: Vec<(String, String)>,
}

/// One step an agent reported in its output stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The agent started (its session id and model when it says them).
    Started {
        /// Its session, for resuming.
        session: Option<String>,
        /// The model it believes it uses.
        model: Option<String>,
    },
    /// Text the agent said.
    Message {
        /// The text.
        text: String,
    },
    /// A piece of text the agent is still saying (streamed); consecutive
    /// pieces make one message.
    MessagePart {
        /// The piece.
        text: String,
    },
    /// The agent called a tool.
    ToolCall {
        /// The call's id.
        id: String,
        /// The tool (`Bash`, `Edit`, ...).
        tool: String,
        /// Its input.
        input: Value,
    },
    /// A tool's result came back.
    ToolResult {
        /// The call it answers.
        id: String,
        /// What the tool returned (cut to a few KiB).
        output: String,
        /// The tool failed or was refused.
        is_error: bool,
    },
    /// The agent ended its run.
    Finished {
        /// It says it succeeded.
        ok: bool,
        /// Its final words.
        summary: String,
        /// Its session, for resuming.
        session: Option<String>,
        /// Model turns it counted.
        turns: Option<u64>,
    },
}

/// What names an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct About {
    /// Its name in `[agents]` and task briefs (`claude-code`).
    pub name: &'static str,
    /// The program to look for on `PATH`.
    pub program: &'static str,
    /// How to install it, for the error when it is missing.
    pub install_hint: &'static str,
    /// The protocol it speaks to the gateway.
    pub protocol: Protocol,
}

/// One external agent CLI.
pub trait ExternalAgent: Send + Sync {
    /// What names it.
    fn about(&self) -> About;

    /// Its name in `[agents]` and task briefs (`claude-code`).
    fn name(&self) -> &str {
        self.about().name
    }

    /// The program to look for on `PATH`.
    fn program(&self) -> &str {
        self.about().program
    }

    /// How to install it, for the error when it is missing.
    fn install_hint(&self) -> &str {
        self.about().install_hint
    }

    /// The protocol it speaks to the gateway.
    fn protocol(&self) -> Protocol {
        self.about().protocol
    }

    /// Arguments that print its version.
    fn version_args(&self) -> &[&str] {
        &["--version"]
    }

    /// Writes its configuration into the private home and says how to
    /// start it.
    fn prepare(&self, setup: &Setup<'_>) -> Result<Launch, String>;

    /// The steps one line of its standard output reports (none for lines
    /// that are not its machine-readable output).
    fn parse_line(&self, line: &str) -> Vec<Step>;

    /// It speaks the Agent Client Protocol (see [`acp`]), the structured
    /// channel preferred when the sandbox can carry it.
    fn speaks_acp(&self) -> bool {
        false
    }

    /// A file in the private home where the agent writes the record of its
    /// run when it ends, for agents whose output is not machine-readable.
    fn trajectory(&self) -> Option<&str> {
        None
    }

    /// The steps of the record in [`ExternalAgent::trajectory`].
    fn parse_trajectory(&self, _text: &str) -> Vec<Step> {
        Vec::new()
    }
}

/// The adapter called `name`, with `command` for the any-command adapter.
pub fn adapter(name: &str, command: Option<&str>) -> Result<Box<dyn ExternalAgent>, String> {
    match (name, command) {
        (_, Some(command)) => Ok(Box::new(AnyCommand::new(name, command)?)),
        ("claude-code", None) => Ok(Box::new(ClaudeCode)),
        ("mini-swe-agent", None) => Ok(Box::new(MiniSweAgent)),
        ("codex", None) => Ok(Box::new(Codex)),
        ("gemini-cli", None) => Ok(Box::new(GeminiCli)),
        ("opencode", None) => Ok(Box::new(Opencode)),
        ("aider", None) => Ok(Box::new(Aider)),
        ("openhands", None) => Ok(Box::new(OpenHands)),
        (other, None) => Err(format!(
            "no agent named {other:?}: the built-in adapters are aider, claude-code, codex, gemini-cli, mini-swe-agent, opencode and openhands; for another agent add [agents.{other}] with command = \"...\" to config.toml"
        )),
    }
}

/// The adapters Push Pals ships, for `doctor`.
pub fn builtin() -> Vec<Box<dyn ExternalAgent>> {
    vec![
        Box::new(Aider),
        Box::new(ClaudeCode),
        Box::new(Codex),
        Box::new(GeminiCli),
        Box::new(MiniSweAgent),
        Box::new(Opencode),
        Box::new(OpenHands),
    ]
}

/// Finds `program` (a name looked up on `search`, or a path) and resolves
/// links, so the sandbox can be given the real file. The error names the
/// install command.
pub fn find_program(
    agent: &dyn ExternalAgent,
    configured: Option<&Path>,
    search: &[PathBuf],
) -> Result<PathBuf, String> {
    let missing = |where_: String| {
        format!(
            "{} is not installed ({where_}); install it with `{}`, or set [agents.{}] program = \"/path/to/{}\" in config.toml",
            agent.name(),
            agent.install_hint(),
            agent.name(),
            agent.program()
        )
    };
    let found = match configured {
        Some(path) => path
            .is_file()
            .then(|| path.to_path_buf())
            .ok_or_else(|| missing(format!("{} does not exist", path.display())))?,
        None => search
            .iter()
            .map(|dir| dir.join(agent.program()))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| missing(format!("no {} on PATH", agent.program())))?,
    };
    std::fs::canonicalize(&found).map_err(|e| missing(format!("{}: {e}", found.display())))
}

/// The directory the sandbox must see for `program` to run: the package
/// holding it for npm and pip installs (the parent of the nearest
/// `node_modules`, or of a virtual environment's `bin`), else its own
/// directory.
pub fn install_root(program: &Path) -> PathBuf {
    for ancestor in program.ancestors() {
        if ancestor.file_name().is_some_and(|n| n == "node_modules")
            && let Some(parent) = ancestor.parent()
        {
            return parent.to_path_buf();
        }
        if ancestor.join("pyvenv.cfg").is_file() {
            return ancestor.to_path_buf();
        }
    }
    program
        .parent()
        .map_or_else(|| program.to_path_buf(), Path::to_path_buf)
}

/// The Python installation a virtual environment was made from (the
/// prefix above the `home` its `pyvenv.cfg` names), which must be visible
/// beside the environment for its interpreter to start: pyenv's, uv's
/// managed Pythons, or any other. `None` when `root` is not a venv.
pub fn venv_base_prefix(root: &Path) -> Option<PathBuf> {
    let config = std::fs::read_to_string(root.join("pyvenv.cfg")).ok()?;
    let home = config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "home").then(|| PathBuf::from(value.trim()))
    })?;
    // `home` is the interpreter's directory (`<prefix>/bin`).
    let prefix = if home.ends_with("bin") {
        home.parent()?.to_path_buf()
    } else {
        home
    };
    (prefix.is_absolute() && prefix.is_dir()).then_some(prefix)
}

/// `text` as one word of a POSIX shell line.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Environment variables from pairs.
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// Writes a configuration file (creating its directory), private to the
/// owner.
pub(crate) fn write_private(path: &Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(content.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A setup for adapters' tests: the sandbox's home and gateway as the
/// orchestrator gives them, no hook, no session; the rest to fill in.
#[cfg(test)]
pub(crate) fn test_setup(home: &Path) -> Setup<'_> {
    Setup {
        home,
        sandbox_home: "/tmp/home",
        gateway_url: "http://127.0.0.1:4141",
        token: "ppgw-test",
        model: "m-test",
        program: Path::new("/opt/agent"),
        prompt: "add bar",
        hook: None,
        resume: None,
        acp: false,
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_any_text() {
        let nasty = "it's $(rm -rf /) `x` \"y\" \\ ;|&";
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote(nasty)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(output.stdout).unwrap(), nasty);
    }

    #[test]
    fn a_missing_agent_names_its_install_command() {
        let dir = tempfile::tempdir().unwrap();
        let error = find_program(&ClaudeCode, None, &[dir.path().to_path_buf()]).unwrap_err();
        assert!(
            error.contains("npm install -g @anthropic-ai/claude-code"),
            "{error}"
        );
        let error = find_program(&ClaudeCode, Some(&dir.path().join("nope")), &[]).unwrap_err();
        assert!(error.contains("does not exist"), "{error}");
        std::fs::write(dir.path().join("claude"), "").unwrap();
        assert_eq!(
            find_program(&ClaudeCode, None, &[dir.path().to_path_buf()]).unwrap(),
            std::fs::canonicalize(dir.path().join("claude")).unwrap()
        );
    }

    #[test]
    fn the_install_root_is_the_package_holding_the_program() {
        assert_eq!(
            install_root(Path::new("/c/agents/x-1/node_modules/@a/b/bin/claude")),
            Path::new("/c/agents/x-1")
        );
        assert_eq!(
            install_root(Path::new("/usr/bin/tool")),
            Path::new("/usr/bin")
        );
    }

    #[test]
    fn unknown_agents_say_how_to_add_one() {
        let error = adapter("mystery", None).err().unwrap();
        assert!(error.contains("[agents.mystery]"), "{error}");
        assert_eq!(adapter("claude-code", None).unwrap().name(), "claude-code");
        assert_eq!(adapter("mine", Some("echo hi")).unwrap().name(), "mine");
    }

    #[test]
    fn a_venvs_python_is_found_from_its_config() {
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("pythons/3.12.1");
        std::fs::create_dir_all(python.join("bin")).unwrap();
        let venv = dir.path().join("agent");
        std::fs::create_dir_all(&venv).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!(
                "home = {}\ninclude-system-site-packages = false\nversion = 3.12.1\n",
                python.join("bin").display()
            ),
        )
        .unwrap();
        assert_eq!(venv_base_prefix(&venv), Some(python));
        assert_eq!(venv_base_prefix(dir.path()), None, "not a venv");
        std::fs::write(venv.join("pyvenv.cfg"), "home = relative/bin\n").unwrap();
        assert_eq!(
            venv_base_prefix(&venv),
            None,
            "a relative home is not trusted"
        );
    }
}
