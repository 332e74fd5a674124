//! The command line's shape.
//!
//! Over 400 lines: the whole command line's shape (every command and flag), as clap reads it.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Push Pals: a self-hosted coding team beside your git repository.
#[derive(Debug, Parser)]
#[command(name = "pushpals", version, about, propagate_version = true)]
pub struct Cli {
    /// Where Push Pals keeps its database, worktrees and admin token
    /// [default: $XDG_DATA_HOME/pushpals]
    #[arg(long, global = true, env = "PUSHPALS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The server's URL, for every command but `serve`
    #[arg(
        long,
        global = true,
        env = "PUSHPALS_URL",
        default_value = "http://127.0.0.1:7777"
    )]
    pub server: String,

    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the orchestrator for a repository
    Serve(ServeArgs),
    /// Create a task (or `task rm <id>` to clean one up)
    Task(TaskArgs),
    /// Talk to the orchestrator: describe work to plan it into tasks, or
    /// say `status`, `approve 3`, `deny 3 <why>`, `cancel 3`, `how is #3?`
    Chat {
        /// The message (several words are joined)
        #[arg(required = true)]
        message: Vec<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show all tasks, or one task in detail
    Status {
        /// A task id
        task: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show a task's diff against its base commit
    Diff {
        /// The task id
        task: String,
        /// Print JSON (files and diff text)
        #[arg(long)]
        json: bool,
    },
    /// Show a task's events; with --follow, keep streaming them
    Log {
        /// The task id
        task: String,
        /// Keep following until the task waits for you or ends
        #[arg(long, short)]
        follow: bool,
        /// Print one JSON event per line
        #[arg(long)]
        json: bool,
    },
    /// Approve a task's pending approval (commits the change on its branch)
    Approve(DecideArgs),
    /// Deny a task's pending approval (keeps the branch and worktree)
    Deny(DecideArgs),
    /// Run an ended task again, in its worktree and on its branch (on top
    /// of what it committed): a command task with a new command, an agent
    /// task with your feedback
    Continue {
        /// The task id
        task: String,
        /// The command line of the new run (command tasks)
        #[arg(long, conflicts_with = "feedback")]
        run: Option<String>,
        /// What the agent should do differently (agent tasks)
        #[arg(long)]
        feedback: Option<String>,
        /// Approve the command now, should policy ask about it
        #[arg(long)]
        approve_run: bool,
        /// Print the task as JSON
        #[arg(long)]
        json: bool,
    },
    /// Ask to merge a committed task's branch into the base branch locally
    /// (then `approve <task> --action merge`)
    Merge {
        /// The task id
        task: String,
    },
    /// Mark a secret finding of a task's diff a false positive (audited)
    FalsePositive {
        /// The task id
        task: String,
        /// The finding's fingerprint (from `approve` or `diff --json`)
        fingerprint: String,
        /// Why it is not a secret
        #[arg(long)]
        reason: String,
    },
    /// Let something happen without asking, for this repository
    /// (auto-commit: commit when checks pass and no secret is found;
    /// auto-push: push committed task branches; auto-pr: open their pull
    /// requests)
    Grant {
        /// auto-commit, auto-push or auto-pr
        #[arg(value_parser = ["auto-commit", "auto-push", "auto-pr"])]
        kind: String,
        /// The repository it is for (may be left out when there is one)
        #[arg(long)]
        repo: Option<String>,
    },
    /// Take a grant back
    Revoke {
        /// auto-commit, auto-push or auto-pr
        #[arg(value_parser = ["auto-commit", "auto-push", "auto-pr"])]
        kind: String,
        /// The repository it is for (may be left out when there is one)
        #[arg(long)]
        repo: Option<String>,
    },
    /// The repositories this server serves: add (clone a URL, or use a
    /// local checkout in place), list, rm
    Repo {
        /// What to do
        #[command(subcommand)]
        action: RepoAction,
    },
    /// Try the repository's checks (pushpals.toml) at HEAD in the sandbox,
    /// as a task would run them, and say why any does not pass
    Checks {
        /// The repository (may be left out when there is one)
        #[arg(long)]
        repo: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Take changed settings from config.toml now (the server also notices
    /// a change by itself); says which changes need a restart
    Reload {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show the grants in force
    Grants {
        /// The repository (may be left out when there is one)
        #[arg(long)]
        repo: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Cancel a task that has not ended
    Cancel {
        /// The task id
        task: String,
        /// Print the task as JSON
        #[arg(long)]
        json: bool,
    },
    /// Pair a phone or browser with the companion: prints a one-time code,
    /// its link and a QR code (needs the admin token)
    Pair {
        /// What the device may do: read, or approve (read, chat, create,
        /// cancel, approve)
        #[arg(long, default_value = "read", value_parser = ["read", "approve"])]
        scope: String,
        /// The address the phone uses to reach the server, if not --server
        /// (e.g. https://myhost.tailnet.ts.net)
        #[arg(long)]
        url: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Check this machine: sandbox, Landlock, cgroups, git, disk, config,
    /// policy, models, server; one line each, with a fix for each failure
    Doctor {
        /// The settings file [default: $XDG_CONFIG_HOME/pushpals/config.toml]
        #[arg(long, env = "PUSHPALS_CONFIG")]
        config: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove worktrees of tasks that ended long ago, branches already
    /// merged and warm caches whose inputs changed (events and blobs are
    /// never deleted)
    Gc {
        /// Tasks that ended at least this many days ago [default: config's
        /// [retention] worktree_days]
        #[arg(long)]
        older_than_days: Option<u64>,
        /// Only show what would go
        #[arg(long)]
        dry_run: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show the space the database, blobs and each worktree take
    Du {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Scan the served repository now (secrets in tree and history, risky
    /// CI config, TODO hotspots, docs gaps); prints findings by kind
    Scan {
        /// Only what changed since the last scan (the changed files and the
        /// new commits)
        #[arg(long)]
        changed: bool,
        /// The repository (may be left out when there is one)
        #[arg(long)]
        repo: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// What the scanner found that is still open
    Findings {
        /// Only this kind (secret, secret_history, ci_config, todo_hotspot, docs)
        #[arg(long)]
        kind: Option<String>,
        /// Every state, not only open
        #[arg(long)]
        all: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Bundle findings of one kind into a task for the agent (then the
    /// usual diff, approval, push and PR, whose text carries the rationale)
    Propose {
        /// Fingerprints of open findings
        #[arg(required = true)]
        findings: Vec<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Dismiss a finding (it stays dismissed on later scans)
    Dismiss {
        /// The finding's fingerprint
        fingerprint: String,
        /// Why (kept in the audit log)
        #[arg(long)]
        reason: String,
    },
    /// Copy the database to a new file with SQLite's online backup (safe
    /// while the server runs)
    Backup {
        /// The file to write
        file: PathBuf,
    },
    /// Replace the database with a backup (the server must be stopped; the
    /// backup's chain is verified first and the old database kept aside)
    Restore {
        /// The backup file
        file: PathBuf,
    },
    /// Run this host as a worker (enrol once with --token, then report),
    /// or name one (`worker token`)
    Worker(WorkerArgs),
    /// List the worker hosts, or revoke one
    Workers {
        /// Revoke this worker: its token stops working at once
        #[arg(long)]
        revoke: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Move the store to another database (the server must be stopped)
    Store {
        /// What to do
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Run the server as a systemd service
    Service {
        /// What to do
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// HTTPS with a private CA, for a LAN or VPN
    Tls {
        /// What to do
        #[command(subcommand)]
        action: TlsAction,
    },
    /// List paired devices, or revoke one
    Devices {
        /// Revoke the device token with this id
        #[arg(long)]
        revoke: Option<i64>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Internal: the helper that runs inside the sandbox (Landlock, network relay)
    #[command(hide = true)]
    SandboxHelper {
        /// The helper's arguments
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Verify or export the audit log
    Audit {
        /// What to do with the log
        #[command(subcommand)]
        action: AuditAction,
    },
}

/// `service <action>`.
#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Write a hardened systemd unit that runs `serve` (a user unit unless
    /// --system) and say how to start it
    Install {
        /// The repository to serve
        #[arg(long)]
        repo: PathBuf,
        /// The address to listen on
        #[arg(long, default_value = "127.0.0.1:7777")]
        addr: String,
        /// A system unit in /etc/systemd/system (needs root) instead of a
        /// user unit
        #[arg(long)]
        system: bool,
        /// The user a system unit runs as (never root by default)
        #[arg(long, requires = "system")]
        user: Option<String>,
        /// Replace an existing unit
        #[arg(long)]
        force: bool,
    },
    /// Remove the unit written by `install`
    Uninstall {
        /// The system unit instead of the user unit
        #[arg(long)]
        system: bool,
    },
}

/// `repo <action>`.
#[derive(Debug, Subcommand)]
pub enum RepoAction {
    /// Register a repository: a URL is cloned into the data directory (a
    /// token in it is used, never stored); a local path is used in place
    Add {
        /// A URL to clone, or the path of a local checkout
        source: String,
        /// Its name here [default: the URL's or directory's last part]
        #[arg(long)]
        name: Option<String>,
        /// Its base branch [default: the remote's default branch]
        #[arg(long)]
        branch: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List the repositories: name, origin, base branch, last fetch, tasks,
    /// findings
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Take a repository off the server (refused while it has tasks that
    /// need it); a clone in the data directory is deleted, a local checkout
    /// is left alone
    Rm {
        /// Its name
        name: String,
    },
}

/// `tls <action>`.
#[derive(Debug, Subcommand)]
pub enum TlsAction {
    /// Make a private CA and a server certificate for the names and
    /// addresses given, and print the [tls] lines for config.toml
    Init {
        /// A host name or IP address the phone uses to reach the server
        /// (repeat for several)
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Where to write the files [default: tls/ beside config.toml]
        #[arg(long)]
        out: Option<PathBuf>,
        /// The settings file whose directory holds tls/
        #[arg(long, env = "PUSHPALS_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A local git checkout to serve (registered on first use; more with
    /// `pushpals repo add`) [default: the repositories registered before]
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// The address to listen on
    #[arg(long, default_value = "127.0.0.1:7777")]
    pub addr: SocketAddr,
    /// The settings file [default: $XDG_CONFIG_HOME/pushpals/config.toml]
    #[arg(long, env = "PUSHPALS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve plain HTTP on an address other machines can reach (tokens
    /// then cross the network in the clear; every page shows a warning).
    /// Without [tls] in config.toml, only loopback is served otherwise.
    #[arg(long)]
    pub insecure_http: bool,
    /// Keep the state in this PostgreSQL database
    /// (postgres://user@host/db) [default: [store] url in config.toml, else
    /// SQLite in the data directory]
    #[arg(long, env = "PUSHPALS_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
}

/// `task`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TaskArgs {
    /// Clean up a task
    #[command(subcommand)]
    pub action: Option<TaskAction>,
    /// What to do, in one line (the commit subject)
    pub title: Option<String>,
    /// The command line to run in the task's worktree (a command task)
    #[arg(long, conflicts_with = "agent")]
    pub run: Option<String>,
    /// What the built-in agent should do (an agent task; needs a model in
    /// config.toml)
    #[arg(long)]
    pub agent: Option<String>,
    /// The repository to work in (may be left out when there is one)
    #[arg(long)]
    pub repo: Option<String>,
    /// For --agent: files or directories the change should stay within
    #[arg(long, requires = "agent")]
    pub scope: Vec<String>,
    /// For --agent: a task (id) that must be committed first
    #[arg(long, requires = "agent")]
    pub depends_on: Vec<String>,
    /// For --agent: the named model to use (`[models.<name>]`)
    #[arg(long, requires = "agent")]
    pub model: Option<String>,
    /// For --agent: an external agent does the work (`claude-code`, or a
    /// name from `[agents]` in config.toml) instead of the built-in one
    #[arg(long = "with", value_name = "AGENT", requires = "agent")]
    pub external: Option<String>,
    /// Approve the --run command now, should policy ask about it (a denied
    /// command still never runs)
    #[arg(long, requires = "run")]
    pub approve_run: bool,
    /// Stay until the task waits for you or ends, with a progress line
    /// (state, time, latest output); exits 1 when it failed
    #[arg(long, conflicts_with = "json")]
    pub wait: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `task <action>`.
#[derive(Debug, Subcommand)]
pub enum TaskAction {
    /// Remove an ended task's worktree (and its branch, unless committed)
    Rm {
        /// The task id
        task: String,
        /// Print the task as JSON
        #[arg(long)]
        json: bool,
    },
}

/// `approve` and `deny`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The task id
    pub task: String,
    /// Which approval, when the task has several pending
    #[arg(long, value_parser = ["commit", "push", "pr", "command", "merge"])]
    pub action: Option<String>,
    /// Why (kept in the audit log)
    #[arg(long)]
    pub reason: Option<String>,
    /// For a command approval: also let the same command run without asking
    /// for the rest of this task
    #[arg(long, conflicts_with = "always")]
    pub for_task: bool,
    /// For a command approval: always allow this command's pattern (adds a
    /// rule to your policy.toml)
    #[arg(long)]
    pub always: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `audit <action>`.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Recompute the hash chain; exits non-zero and names the first broken
    /// event when it does not hold
    Verify {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Write every event as JSON lines
    Export {
        /// Write to this file instead of standard output
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn task_takes_a_title_or_rm() {
        let cli = Cli::try_parse_from(["pushpals", "task", "Rename", "--run", "true"]).unwrap();
        let Command::Task(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.title.as_deref(), Some("Rename"));
        assert!(args.action.is_none());
        let cli = Cli::try_parse_from(["pushpals", "task", "rm", "abc"]).unwrap();
        let Command::Task(args) = cli.command else {
            panic!()
        };
        assert!(matches!(args.action, Some(TaskAction::Rm { .. })));
    }
}

/// `store`.
#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Copy the whole store into an empty database: a PostgreSQL URL, or a
    /// data directory for SQLite. Both chains are verified and must end in
    /// the same head; the source is left as it is.
    Migrate {
        /// The target: postgres://user@host/db, or a directory
        #[arg(long)]
        to: String,
        /// The source, when it is not the store config.toml names
        /// ([store] url, else SQLite in the data directory)
        #[arg(long)]
        from: Option<String>,
        /// The settings file [default: $XDG_CONFIG_HOME/pushpals/config.toml]
        #[arg(long, env = "PUSHPALS_CONFIG")]
        config: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// `worker`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WorkerArgs {
    /// Name a worker host (admin)
    #[command(subcommand)]
    pub action: Option<WorkerAction>,
    /// The one-time enrolment token from `pushpals worker token` (first
    /// start only; the worker keeps its own token in <data-dir>/worker)
    #[arg(long, env = "PUSHPALS_ENROLMENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The settings file (its [sandbox]) [default:
    /// $XDG_CONFIG_HOME/pushpals/config.toml]
    #[arg(long, env = "PUSHPALS_CONFIG")]
    pub config: Option<PathBuf>,
    /// How many tasks this host runs at once (1 to 64)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub slots: u32,
}

/// `worker ...`.
#[derive(Debug, Subcommand)]
pub enum WorkerAction {
    /// Name a worker host and print its one-time enrolment token (admin)
    Token {
        /// Its name (letters, digits, `.`, `_`, `-`)
        #[arg(long)]
        name: String,
        /// What it offers, matched with what tasks need (`cargo,node`)
        #[arg(long, value_delimiter = ',')]
        labels: Vec<String>,
        /// Seconds the token lives [default: an hour; at most a week]
        #[arg(long)]
        ttl_secs: Option<u64>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}
