//! What a worker host and the server say to each other about work: the
//! instructions a worker takes (`POST /workers/next`) and the report it
//! gives when a command ends. Output and each command's diff travel as
//! raw bytes beside these.
//!
//! Every instruction and report names the task and the lease of the run:
//! a report under a lease the server no longer holds (the run was given to
//! another worker, or the server restarted) is refused with 409.
//!
//! Over 400 lines: every message between a worker host and the server,
//! kept in one file so both sides read one definition of each.

use serde::{Deserialize, Serialize};

/// One thing for a worker to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Instruction {
    /// Take this task: fetch its base (`GET /workers/tasks/{task}/base`)
    /// and check it out in a clone of its own.
    Start {
        /// The task's id.
        task: String,
        /// This run's lease.
        lease: u64,
        /// The repository's name on the server.
        repo: String,
        /// The commit the run starts from.
        base_commit: String,
    },
    /// Run one command of the task in the sandbox, in the task's clone;
    /// send its output and then its [`StepReport`].
    Run {
        /// The task's id.
        task: String,
        /// This run's lease.
        lease: u64,
        /// The command's number within the run.
        seq: u64,
        /// What to run.
        command_line: String,
        /// Its wall-time limit in seconds.
        timeout_secs: u64,
        /// Policy granted it network: its connections go through the
        /// server's proxy (`GET /workers/tasks/{task}/network`, upgraded),
        /// which lets through only the allowlisted hosts and records each.
        #[serde(default)]
        network: bool,
        /// Bring the clone to this tree first, and send what the command
        /// changed after it (every command in the clone; none in a build).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mirror: Option<Mirror>,
        /// Run it in the warm cache being built (after `warm` answered it
        /// had none), not in the clone.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        in_build: bool,
        /// Start where the clone also appears inside the sandbox (a check or
        /// the setup): one path for every run of the repository on this
        /// host, so what a setup made works in every clone.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        at_stable_path: bool,
        /// Variables the command gets (a setup's registry settings).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env: Vec<(String, String)>,
        /// Before it runs in the build: make the setup's own cargo home
        /// (`.pushpals/cargo-home`) there, with this `config.toml` when not
        /// empty.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cargo_home: Option<String>,
        /// The command is an external agent (or its version probe): run it
        /// with the program this host found for it, in a private home of
        /// these files, reaching the model gateway through this worker's
        /// connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<AgentLaunch>,
    },
    /// Give the clone the warm cache `key` when this host has it, else
    /// make a tree of the base to build it in; answer with a
    /// [`WarmReport`] (`POST /workers/tasks/{task}/warm`).
    Warm {
        /// The task's id.
        task: String,
        /// This run's lease.
        lease: u64,
        /// The cache's key (hex): the setup, checks, lock files and
        /// toolchains it was made from.
        key: String,
    },
    /// The build is done: keep it as the warm cache `key` and give it to
    /// the clone; answer with a [`WarmReport`].
    Seal {
        /// The task's id.
        task: String,
        /// This run's lease.
        lease: u64,
        /// The cache's key.
        key: String,
    },
    /// Stop the command `seq` (the task was cancelled).
    Cancel {
        /// The task's id.
        task: String,
        /// This run's lease.
        lease: u64,
        /// The command to stop.
        seq: u64,
    },
    /// The checks are over: take the files `patterns` name from the clone
    /// (as the server takes artifacts: beneath it, never through a link),
    /// send each (`PUT /workers/tasks/{task}/artifacts/{sha256}`), then
    /// an [`ArtifactsReport`] (`POST /workers/tasks/{task}/artifacts`).
    SendArtifacts {
        /// The task's id.
        task: String,
        /// This run's lease.
        lease: u64,
        /// `[checks] artifacts` of the repository.
        patterns: Vec<String>,
    },
    /// The run is over here: remove its clone.
    Done {
        /// The task's id.
        task: String,
        /// This run's lease.
        lease: u64,
    },
}

impl Instruction {
    /// The task the instruction is about.
    pub fn task(&self) -> &str {
        match self {
            Self::Start { task, .. }
            | Self::Run { task, .. }
            | Self::Cancel { task, .. }
            | Self::Warm { task, .. }
            | Self::Seal { task, .. }
            | Self::SendArtifacts { task, .. }
            | Self::Done { task, .. } => task,
        }
    }

    /// The lease of the run the instruction is about.
    pub fn lease(&self) -> u64 {
        match self {
            Self::Start { lease, .. }
            | Self::Run { lease, .. }
            | Self::Cancel { lease, .. }
            | Self::Warm { lease, .. }
            | Self::Seal { lease, .. }
            | Self::SendArtifacts { lease, .. }
            | Self::Done { lease, .. } => *lease,
        }
    }
}

/// What a mirrored run's command starts from. Both sides name the files
/// they hold (all but ignored ones) by their git tree; the server's copy
/// is the one an agent edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// The tree the clone holds when the command starts.
    pub tree: String,
    /// What changed on the server since the two last agreed, as a binary
    /// git diff in base64; absent when nothing did. After applying it the
    /// clone's tree must be [`Mirror::tree`], or the command does not run.
    #[serde(default)]
    pub diff: Option<String>,
}

/// An external agent's command on a worker host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentLaunch {
    /// The agent's adapter (`codex`, `claude-code`, ...): the host gives
    /// the sandbox the program it found for it (see [`Asking::agents`]).
    pub name: String,
    /// The files of its private home, as the server prepared them (its
    /// settings, the gateway's address and the task's token).
    #[serde(default)]
    pub home: Vec<HomeFile>,
    /// A file in the home the agent leaves its record in: sent back in the
    /// command's [`StepReport::trajectory`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectory: Option<String>,
    /// Relay the model gateway into the sandbox
    /// (`GET /workers/tasks/{task}/gateway`, upgraded).
    #[serde(default)]
    pub gateway: bool,
}

/// One file of an agent's private home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeFile {
    /// Its path in the home: relative, plain names only.
    pub path: String,
    /// Its bytes, in base64.
    pub base64: String,
    /// Its permission bits.
    pub mode: u32,
}

impl HomeFile {
    /// Its path, checked to stay within the home (see [`plain_path`]).
    pub fn relative_path(&self) -> Result<std::path::PathBuf, String> {
        plain_path(&self.path)
    }
}

/// `path` when it is relative and of plain names (no `..`, no root, no
/// empty part), so it stays within the directory it is joined to.
pub fn plain_path(path: &str) -> Result<std::path::PathBuf, String> {
    let parsed = std::path::Path::new(path);
    let plain = !path.is_empty()
        && parsed
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if plain {
        Ok(parsed.to_path_buf())
    } else {
        Err(format!(
            "a path in an agent's home must be relative and plain, not {path:?}"
        ))
    }
}

/// An external agent a worker host has: its adapter's name and the
/// program found on the host's `PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferedAgent {
    /// The adapter's name.
    pub name: String,
    /// The program, links resolved.
    pub program: String,
}

/// What a worker did about a warm cache (`POST /workers/tasks/{task}/warm`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmReport {
    /// The run's lease.
    pub lease: u64,
    /// The cache's key.
    pub key: String,
    /// The clone got the cache (after `warm`: it had it; after `seal`: it
    /// kept the build). False after `warm`: build it.
    pub used: bool,
    /// What the cache holds, relative to the tree (`.venv`, `target`).
    #[serde(default)]
    pub entries: Vec<String>,
    /// How many files.
    #[serde(default)]
    pub files: u64,
    /// How many bytes.
    #[serde(default)]
    pub bytes: u64,
    /// Their SHA-256 (paths, kinds, modes, contents and link targets).
    #[serde(default)]
    pub sha256: String,
    /// The commit the cache was built at.
    #[serde(default)]
    pub built_at: String,
    /// Why it could not (the cache cannot be read, copied or kept).
    #[serde(default)]
    pub error: Option<String>,
}

/// The artifacts a worker took from a run's clone, after sending each
/// taken file's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactsReport {
    /// The run's lease.
    pub lease: u64,
    /// The files taken.
    #[serde(default)]
    pub taken: Vec<TakenArtifact>,
    /// The files matched and not taken, each with why (`path`, `reason`).
    #[serde(default)]
    pub refused: Vec<(String, String)>,
    /// Why none could be taken (the patterns, the clone).
    #[serde(default)]
    pub error: Option<String>,
}

/// One file a worker took as an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakenArtifact {
    /// Its path in the clone.
    pub path: String,
    /// Its content's SHA-256 (hex), under which its bytes were sent.
    pub sha256: String,
}

/// What a worker says when it asks for work (`POST /workers/next`): the
/// runs it holds, and how many it runs at once. A run the server counts as
/// the worker's that it no longer holds (it restarted) is lost at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asking {
    /// The runs it holds.
    #[serde(default)]
    pub holding: Vec<HeldRun>,
    /// How many runs it takes at once (1 when not said; at most 64).
    #[serde(default)]
    pub slots: Option<u32>,
    /// The external agents installed on the host: tasks of theirs may
    /// run here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<OfferedAgent>,
}

impl Asking {
    /// How many runs the worker takes at once.
    pub fn slots(&self) -> usize {
        self.slots.map_or(1, |n| n.clamp(1, 64) as usize)
    }
}

/// A run a worker holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldRun {
    /// The task.
    pub task: String,
    /// Its lease.
    pub lease: u64,
}

/// How one command ended on a worker (`POST /workers/tasks/{task}/result`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    /// The run's lease.
    pub lease: u64,
    /// The command's number.
    pub seq: u64,
    /// How many output chunks were sent before this report.
    pub chunks: u64,
    /// Its exit code, when it exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that ended it.
    #[serde(default)]
    pub signal: Option<i32>,
    /// It hit its time limit.
    #[serde(default)]
    pub timed_out: bool,
    /// It was cancelled.
    #[serde(default)]
    pub cancelled: bool,
    /// How long it ran.
    #[serde(default)]
    pub duration_ms: u64,
    /// Why it could not run at all (the sandbox refused it).
    #[serde(default)]
    pub error: Option<String>,
    /// A mirrored run's command changed the clone: its tree now. The diff
    /// from the tree it started at was sent first
    /// (`PUT /workers/tasks/{task}/diff?lease=&seq=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// An agent's record file ([`AgentLaunch::trajectory`]), when it left
    /// one (at most [`MAX_TRAJECTORY`] bytes are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectory: Option<String>,
}

/// The most bytes of an agent's record a worker sends back.
pub const MAX_TRAJECTORY: usize = 8 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_say_their_kind() {
        let start = Instruction::Start {
            task: "t1".into(),
            lease: 7,
            repo: "main".into(),
            base_commit: "abc".into(),
        };
        let text = serde_json::to_string(&start).unwrap();
        assert!(text.contains(r#""kind":"start""#), "{text}");
        assert_eq!(serde_json::from_str::<Instruction>(&text).unwrap(), start);
        assert_eq!((start.task(), start.lease()), ("t1", 7));
        let odd = serde_json::from_str::<Instruction>(r#"{"kind":"format_disk","task":"t"}"#);
        assert!(odd.is_err());
    }

    #[test]
    fn home_files_stay_in_the_home() {
        let file = |path: &str| HomeFile {
            path: path.into(),
            base64: String::new(),
            mode: 0o600,
        };
        assert_eq!(
            file(".codex/config.toml").relative_path().unwrap(),
            std::path::PathBuf::from(".codex/config.toml")
        );
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "./a"] {
            let refused = file(bad).relative_path().unwrap_err();
            assert!(refused.contains("relative and plain"), "{bad}: {refused}");
        }
    }
}
