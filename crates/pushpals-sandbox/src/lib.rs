//! Running commands for Push Pals.
//!
//! A [`Runner`] runs one command line in a directory with a wall-time limit,
//! streams its stdout and stderr as they come, and kills its whole process
//! group on timeout or cancellation. Deciding *whether* a command may run is
//! not this crate's job (that is `pushpals-policy`).
//!
//! Backends: [`BwrapRunner`] runs each command under bubblewrap in new
//! user, mount, PID, IPC, UTS and network namespaces, with the worktree as
//! the only writable place, resource limits from rlimits and a cgroup per
//! command; it refuses to start when it cannot isolate. [`ContainerRunner`]
//! runs each command in a fresh Podman or Docker container of a configured
//! image, without network or capabilities. [`HostRunner`]
//! only scrubs the environment and bounds time; it is used only when the
//! configuration explicitly says `sandbox = "none"`.

mod bwrap;
mod bwrap_resident;
mod container;
mod etc;
pub mod helper;
mod host;
mod limits;
pub mod proxy;
mod resident;
mod spec;
mod supervise;
mod toolchains;

pub use bwrap::{BwrapConfig, BwrapRunner, SandboxError};
pub use container::{ContainerConfig, ContainerError, ContainerRunner};
pub use host::HostRunner;
pub use limits::{CgroupLayout, Limits};
pub use proxy::{Allowlist, NetworkEvent, Proxy};
pub use spec::{CommandOutcome, CommandSpec, OutputChunk, OutputStream, RunError, WorktreeAlias};

use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, watch};

/// The sandbox's home directory (on its private `/tmp`; a command given a
/// private home finds it here).
pub const SANDBOX_HOME: &str = "/tmp/home";

/// Where a command given the model gateway reaches it inside the sandbox
/// (a loopback listener relayed to the gateway's Unix socket).
pub const GATEWAY_ADDRESS: &str = "127.0.0.1:4141";

/// The gateway's base URL inside the sandbox (also in `$PUSHPALS_GATEWAY`).
pub const GATEWAY_URL: &str = "http://127.0.0.1:4141";

/// A boxed future, so runners can sit behind `Arc<dyn Runner>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs command lines. Implementations stream output to `output` while the
/// command runs and stop it when `cancel` becomes true.
pub trait Runner: Send + Sync {
    /// A short name of the backend, shown with every task.
    fn backend(&self) -> &'static str;

    /// False for a backend that does not isolate commands.
    fn isolated(&self) -> bool {
        true
    }

    /// The command line that, inside this backend's sandbox, runs the
    /// helper's `hook` mode (an agent's tool-call hook asks the gateway's
    /// judge through it); `None` when the backend has no helper.
    fn hook_command(&self) -> Option<String> {
        None
    }

    /// What commands see besides the system and the worktree, for a task's
    /// record: read-only toolchain directories (`"<host> at <inside>"`
    /// where they appear elsewhere) and the variables that point at them.
    fn toolchains(&self) -> Vec<String> {
        Vec::new()
    }

    /// Ends whatever the backend keeps up for the worktree at `worktree`
    /// (a task's resident sandbox), once its running commands end: called
    /// when the worktree is removed or unmounted.
    fn release<'a>(&'a self, worktree: &'a std::path::Path) -> BoxFuture<'a, ()> {
        let _ = worktree;
        Box::pin(async {})
    }

    /// Runs `spec` to its end, its time limit, or cancellation.
    fn run<'a>(
        &'a self,
        spec: CommandSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<CommandOutcome, RunError>>;
}
