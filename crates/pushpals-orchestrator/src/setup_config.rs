//! `[setup]` of `pushpals.toml`: the command that prepares a repository's
//! dependencies once for all its tasks, and what it may reach; a dev
//! container's lifecycle commands when the repository names none.

use serde::Deserialize;
use std::time::Duration;

/// `[setup]`: `command` prepares dependencies (`npm ci`, a virtual
/// environment); `network` names the package registries (`pypi`, `npm`) or
/// host patterns it may reach.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SetupSection {
    /// The command line, run in the sandbox at the base commit.
    pub command: Option<String>,
    /// Registries by name, or host patterns (`"*.example.com"`).
    pub network: Vec<String>,
    /// Its time limit in seconds (can only lower the server's).
    pub timeout_secs: Option<u64>,
}

/// A package registry a setup step may reach; its hosts come from the
/// configuration the person uses on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Registry {
    /// Python packages, where pip looks.
    Pypi,
    /// Rust crates, where cargo looks (its own cargo home in the tree).
    Cargo,
    /// Node packages, where npm looks.
    Npm,
}

impl Registry {
    /// Registries by their names in `network`.
    pub const ALL: [(&'static str, Registry); 3] = [
        ("pypi", Registry::Pypi),
        ("npm", Registry::Npm),
        ("cargo", Registry::Cargo),
    ];

    /// Its name in `network`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pypi => "pypi",
            Self::Npm => "npm",
            Self::Cargo => "cargo",
        }
    }
}

/// Where a setup step may connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// A registry, by name.
    Registry(Registry),
    /// A host pattern, as in `[network] allow`.
    Host(String),
}

/// Where the setup command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupSource {
    /// `[setup]` of `pushpals.toml`.
    PushpalsToml,
    /// `.devcontainer/devcontainer.json`'s lifecycle commands.
    DevContainer,
}

impl SetupSource {
    /// For events and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PushpalsToml => "pushpals.toml [setup]",
            Self::DevContainer => ".devcontainer/devcontainer.json",
        }
    }
}

/// The setup step a repository asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupStep {
    /// The command line.
    pub command: String,
    /// What it may reach.
    pub reach: Vec<Reach>,
    /// Where it came from.
    pub source: SetupSource,
    /// Its own time limit, if it set one.
    pub timeout: Option<Duration>,
}

impl SetupSection {
    /// The step, when the section names a command; an unknown registry
    /// name or a bad host pattern is an error that says what to write.
    pub fn step(&self) -> Result<Option<SetupStep>, String> {
        let Some(command) = self.command.as_ref().filter(|c| !c.trim().is_empty()) else {
            if !self.network.is_empty() {
                return Err(
                    "pushpals.toml [setup]: `network` is given but `command` is not; name the command that needs it"
                        .into(),
                );
            }
            return Ok(None);
        };
        let reach = self
            .network
            .iter()
            .map(|entry| parse_reach(entry))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(SetupStep {
            command: command.clone(),
            reach,
            source: SetupSource::PushpalsToml,
            timeout: self.timeout_secs.map(Duration::from_secs),
        }))
    }
}

/// One `network` entry: a registry's name, or a host pattern (it has a dot
/// or a wildcard).
fn parse_reach(entry: &str) -> Result<Reach, String> {
    let entry = entry.trim();
    if let Some((_, registry)) = Registry::ALL.iter().find(|(name, _)| *name == entry) {
        return Ok(Reach::Registry(*registry));
    }
    if entry.contains('.') || entry.contains('*') {
        pushpals_sandbox::Allowlist::new(&[entry.to_owned()])
            .map_err(|e| format!("pushpals.toml [setup] network: {e}"))?;
        return Ok(Reach::Host(entry.to_owned()));
    }
    let names: Vec<_> = Registry::ALL.iter().map(|(name, _)| *name).collect();
    Err(format!(
        "pushpals.toml [setup] network: `{entry}` is neither a registry Push Pals knows ({}) nor a host pattern (`pkgs.example.com`, `*.example.com`)",
        names.join(", ")
    ))
}

/// The setup a dev container would run (`onCreateCommand`,
/// `updateContentCommand`, `postCreateCommand`, in that order), offered
/// when `pushpals.toml` has no `[setup]`; it may reach the registries whose
/// manifests the repository has. `None` when the file names none.
pub fn devcontainer_step(
    json: &[u8],
    has_file: impl Fn(&str) -> bool,
) -> Result<Option<SetupStep>, String> {
    let reader = json_comments::StripComments::new(json);
    let value: serde_json::Value = serde_json::from_reader(reader)
        .map_err(|e| format!(".devcontainer/devcontainer.json: {e}"))?;
    let mut parts = Vec::new();
    for key in [
        "onCreateCommand",
        "updateContentCommand",
        "postCreateCommand",
    ] {
        if let Some(command) = value.get(key) {
            lifecycle_command(command, key, &mut parts)?;
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let mut reach = Vec::new();
    if [
        "pyproject.toml",
        "requirements.txt",
        "setup.py",
        "setup.cfg",
    ]
    .iter()
    .any(|f| has_file(f))
    {
        reach.push(Reach::Registry(Registry::Pypi));
    }
    if has_file("package.json") {
        reach.push(Reach::Registry(Registry::Npm));
    }
    if has_file("Cargo.toml") {
        reach.push(Reach::Registry(Registry::Cargo));
    }
    Ok(Some(SetupStep {
        command: parts.join(" && "),
        reach,
        source: SetupSource::DevContainer,
        timeout: None,
    }))
}

/// A lifecycle command: a shell line, an argument list, or named commands
/// of either form.
fn lifecycle_command(
    value: &serde_json::Value,
    key: &str,
    parts: &mut Vec<String>,
) -> Result<(), String> {
    let wrong = || {
        format!(
            ".devcontainer/devcontainer.json: `{key}` must be a command line, a list of arguments, or an object of them"
        )
    };
    match value {
        serde_json::Value::String(line) if !line.trim().is_empty() => {
            parts.push(format!("( {line} )"));
        }
        serde_json::Value::String(_) => {}
        serde_json::Value::Array(args) => {
            let words = args
                .iter()
                .map(|arg| arg.as_str().map(shell_word).ok_or_else(wrong))
                .collect::<Result<Vec<_>, _>>()?;
            if !words.is_empty() {
                parts.push(words.join(" "));
            }
        }
        serde_json::Value::Object(named) => {
            for command in named.values() {
                if command.is_object() {
                    return Err(wrong());
                }
                lifecycle_command(command, key, parts)?;
            }
        }
        _ => return Err(wrong()),
    }
    Ok(())
}

/// `word` quoted for bash when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@+,%".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> SetupSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn network_names_registries_or_host_patterns_and_nothing_else() {
        let step = section("command = \"npm ci\"\nnetwork = [\"npm\", \"*.example.com\"]\n")
            .step()
            .unwrap()
            .unwrap();
        assert_eq!(
            step.reach,
            [
                Reach::Registry(Registry::Npm),
                Reach::Host("*.example.com".into())
            ]
        );
        let err = section("command = \"x\"\nnetwork = [\"pipy\"]\n")
            .step()
            .unwrap_err();
        assert!(err.contains("`pipy`") && err.contains("pypi, npm"), "{err}");
        let err = section("network = [\"npm\"]\n").step().unwrap_err();
        assert!(err.contains("`command` is not"), "{err}");
        assert_eq!(section("").step().unwrap(), None);
        assert!(toml::from_str::<SetupSection>("comand = \"x\"").is_err());
    }

    #[test]
    fn a_dev_containers_lifecycle_commands_become_the_default_setup() {
        let json = br#"{
            // comments are allowed
            "image": "x",
            "postCreateCommand": ["pip", "install", "-e", ".[test]"],
            "onCreateCommand": "python3 -m venv .venv",
            "updateContentCommand": { "a": "npm ci", "b": ["echo", "it's"] }
        }"#;
        let step = devcontainer_step(json, |f| f == "pyproject.toml")
            .unwrap()
            .unwrap();
        assert_eq!(
            step.command,
            "( python3 -m venv .venv ) && ( npm ci ) && echo 'it'\\''s' && pip install -e '.[test]'"
        );
        assert_eq!(step.reach, [Reach::Registry(Registry::Pypi)]);
        assert_eq!(step.source, SetupSource::DevContainer);
        assert_eq!(
            devcontainer_step(b"{\"image\":\"x\"}", |_| true).unwrap(),
            None
        );
        let err = devcontainer_step(b"{\"postCreateCommand\": 3}", |_| true).unwrap_err();
        assert!(err.contains("`postCreateCommand` must be"), "{err}");
        let err = devcontainer_step(b"{", |_| true).unwrap_err();
        assert!(err.starts_with(".devcontainer/devcontainer.json:"), "{err}");
    }
}
