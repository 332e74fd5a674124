//! Resource limits: rlimits, and cgroups for process count and memory
//! (which rlimits cannot bound for root). Making a cgroup costs milliseconds,
//! so the runner keeps a pool: a command's cgroup is emptied after it and
//! reused by the next command.
//!
//! Over 400 lines: rlimits and the cgroups that bound processes and memory where rlimits cannot, with their pool and sweep; one concern, the limits a command runs under.

use nix::fcntl::{OFlag, open};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::stat::Mode;
use nix::unistd::write;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bounds on one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// CPU seconds.
    pub cpu_secs: u64,
    /// Memory in bytes (cgroup).
    pub memory_bytes: u64,
    /// Processes and threads at once (cgroup, and rlimit for non-root).
    pub processes: u64,
    /// Open files per process.
    pub open_files: u64,
    /// Largest file a process may write, in bytes.
    pub file_size_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_secs: 3600,
            memory_bytes: 4 << 30,
            processes: 512,
            open_files: 4096,
            file_size_bytes: 2 << 30,
        }
    }
}

impl Limits {
    /// The rlimits a command gets, by name (see [`resource`]); with
    /// `processes`, `RLIMIT_NPROC` too (when no cgroup bounds them).
    pub(crate) fn rlimits(&self, processes: bool) -> Vec<(&'static str, u64)> {
        let mut rlimits = vec![
            ("cpu", self.cpu_secs),
            ("nofile", self.open_files),
            ("fsize", self.file_size_bytes),
            ("core", 0),
        ];
        if processes {
            rlimits.push(("nproc", self.processes));
        }
        rlimits
    }
}

/// The resource an rlimit name stands for.
pub(crate) fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "cpu" => Resource::RLIMIT_CPU,
        "nofile" => Resource::RLIMIT_NOFILE,
        "fsize" => Resource::RLIMIT_FSIZE,
        "core" => Resource::RLIMIT_CORE,
        "nproc" => Resource::RLIMIT_NPROC,
        _ => return None,
    })
}

/// What the child process does to itself between fork and exec: join the
/// command's cgroups, then set its rlimits. Prepared before the fork so that
/// [`ChildSetup::apply`] only makes system calls and never allocates.
#[derive(Debug, Clone)]
pub(crate) struct ChildSetup {
    procs_files: Vec<CString>,
    rlimits: Vec<(Resource, u64)>,
}

impl ChildSetup {
    /// The setup for `limits`; `cgroup` bounds processes and memory when
    /// present, else `RLIMIT_NPROC` does (which does not bind root).
    pub(crate) fn new(limits: &Limits, cgroup: Option<&CommandCgroup>) -> io::Result<Self> {
        let procs_files = cgroup
            .map(CommandCgroup::procs_files)
            .unwrap_or_default()
            .into_iter()
            .map(|path| CString::new(path.into_os_string().into_vec()).map_err(io::Error::other))
            .collect::<io::Result<Vec<_>>>()?;
        let rlimits = limits
            .rlimits(cgroup.is_none())
            .into_iter()
            .filter_map(|(name, value)| Some((resource(name)?, value)))
            .collect();
        Ok(Self {
            procs_files,
            rlimits,
        })
    }

    /// Joins the cgroups (writing "0" to `cgroup.procs` moves the writer)
    /// and sets the rlimits. Runs in the forked child: system calls only.
    pub(crate) fn apply(&self) -> io::Result<()> {
        for path in &self.procs_files {
            let fd = open(
                path.as_c_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            write(&fd, b"0")?;
        }
        for (resource, value) in &self.rlimits {
            setrlimit(*resource, *value, *value)?;
        }
        Ok(())
    }
}

/// Where this machine lets us make cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLayout {
    /// Unified hierarchy with the pids and memory controllers.
    V2 {
        /// Our parent cgroup.
        parent: PathBuf,
    },
    /// Legacy per-controller hierarchies (also the usual hybrid layout).
    V1 {
        /// Our parent in the pids hierarchy.
        pids: PathBuf,
        /// Our parent in the memory hierarchy, when present.
        memory: Option<PathBuf>,
    },
}

impl std::fmt::Display for CgroupLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::V2 { parent } => write!(f, "cgroup v2 under {}", parent.display()),
            Self::V1 {
                pids,
                memory: Some(memory),
            } => write!(
                f,
                "cgroup v1: pids under {}, memory under {}",
                pids.display(),
                memory.display()
            ),
            Self::V1 { pids, memory: None } => write!(
                f,
                "cgroup v1: pids under {} (no memory controller)",
                pids.display()
            ),
        }
    }
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl CgroupLayout {
    /// Finds a writable cgroup hierarchy with a pids controller and makes
    /// our parent cgroup in it; `None` when there is none.
    pub fn detect() -> Option<Self> {
        let layout = Self::find()?;
        // A parent made by another user (root, an earlier run) may exist
        // without us being allowed to make cgroups in it.
        let parent = match &layout {
            Self::V2 { parent } => parent,
            Self::V1 { pids, .. } => pids,
        };
        // Named apart per call: runners made at once in one process (tests,
        // a restart) must not fail on each other's probe.
        let probe = parent.join(format!(
            "probe-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&probe).ok()?;
        let _ = std::fs::remove_dir(&probe);
        Some(layout)
    }

    fn find() -> Option<Self> {
        let root = Path::new(CGROUP_ROOT);
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "pids") {
            let parent = root.join("pushpals");
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+pids +memory");
            if std::fs::create_dir_all(&parent).is_ok() {
                let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+pids +memory");
                if parent.join("cgroup.procs").exists() {
                    return Some(Self::V2 { parent });
                }
            }
        }
        let pids = root.join("pids");
        if pids.join("cgroup.procs").exists() {
            let pids_parent = pids.join("pushpals");
            if std::fs::create_dir_all(&pids_parent).is_ok()
                && pids_parent.join("pids.max").exists()
            {
                let memory_parent = root.join("memory").join("pushpals");
                let memory = (root.join("memory/cgroup.procs").exists()
                    && std::fs::create_dir_all(&memory_parent).is_ok())
                .then_some(memory_parent);
                return Some(Self::V1 {
                    pids: pids_parent,
                    memory,
                });
            }
        }
        None
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl CgroupLayout {
    /// The directories command cgroups are made in.
    fn parents(&self) -> Vec<&Path> {
        match self {
            Self::V2 { parent } => vec![parent.as_path()],
            Self::V1 { pids, memory } => std::iter::once(pids.as_path())
                .chain(memory.as_deref())
                .collect(),
        }
    }

    /// Removes the command cgroups of servers that are gone (killed
    /// before they could clean up), after killing what is left in them.
    /// Cgroups of live processes, ours or another server's, stay.
    pub fn sweep_stale(&self) -> usize {
        let mut removed = 0;
        for parent in self.parents() {
            let Ok(entries) = std::fs::read_dir(parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(owner) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("cmd-"))
                    .and_then(|rest| rest.split('-').next())
                    .and_then(|pid| pid.parse::<u32>().ok())
                else {
                    continue;
                };
                let alive = Path::new("/proc").join(owner.to_string()).exists();
                if owner != std::process::id() && !alive {
                    let dir = entry.path();
                    kill_procs(&dir);
                    if remove_cgroup(&dir) {
                        removed += 1;
                    }
                }
            }
        }
        removed
    }
}

/// SIGKILLs every process in one cgroup directory.
fn kill_procs(dir: &Path) {
    let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Removes a cgroup directory, waiting a little for its last processes to
/// be reaped; true when it is gone.
fn remove_cgroup(dir: &Path) -> bool {
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// The cgroups of one command; removed (after killing what is left in
/// them) when dropped.
#[derive(Debug)]
pub(crate) struct CommandCgroup {
    dirs: Vec<PathBuf>,
}

impl CommandCgroup {
    /// Makes the command's cgroups and sets their limits.
    pub(crate) fn create(layout: &CgroupLayout, limits: &Limits) -> io::Result<Self> {
        // A server killed without cleaning up may have left cgroups named
        // with its pid, which we may have been given again: remove such a
        // leftover, or pass over its name while something still runs in it.
        let name = loop {
            let name = format!(
                "cmd-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let taken = layout
                .parents()
                .into_iter()
                .map(|parent| parent.join(&name))
                .filter(|dir| dir.exists())
                .any(|dir| !remove_cgroup(&dir));
            if !taken {
                break name;
            }
        };
        let mut made = Self { dirs: Vec::new() };
        match layout {
            CgroupLayout::V2 { parent } => {
                let dir = parent.join(&name);
                std::fs::create_dir(&dir)?;
                made.dirs.push(dir.clone());
                std::fs::write(dir.join("pids.max"), limits.processes.to_string())?;
                if dir.join("memory.max").exists() {
                    std::fs::write(dir.join("memory.max"), limits.memory_bytes.to_string())?;
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                }
            }
            CgroupLayout::V1 { pids, memory } => {
                let dir = pids.join(&name);
                std::fs::create_dir(&dir)?;
                made.dirs.push(dir.clone());
                std::fs::write(dir.join("pids.max"), limits.processes.to_string())?;
                if let Some(memory) = memory {
                    let dir = memory.join(&name);
                    std::fs::create_dir(&dir)?;
                    made.dirs.push(dir.clone());
                    std::fs::write(
                        dir.join("memory.limit_in_bytes"),
                        limits.memory_bytes.to_string(),
                    )?;
                }
            }
        }
        Ok(made)
    }

    /// The `cgroup.procs` files a process writes its pid to, to join.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// True when no process is left in the cgroups.
    pub(crate) fn is_empty(&self) -> bool {
        self.dirs.iter().all(|dir| {
            std::fs::read_to_string(dir.join("cgroup.procs"))
                .is_ok_and(|procs| procs.trim().is_empty())
        })
    }

    /// Kills every process still in the cgroups.
    pub(crate) fn kill_all(&self) {
        for dir in &self.dirs {
            kill_procs(dir);
        }
    }
}

impl Drop for CommandCgroup {
    fn drop(&mut self) {
        self.kill_all();
        for dir in &self.dirs {
            // A cgroup can be removed once its last process is reaped.
            remove_cgroup(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_removes_the_cgroups_of_dead_servers_only() {
        let parent = tempfile::tempdir().unwrap();
        let dead = parent.path().join("cmd-4000000000-7");
        let ours = parent.path().join(format!("cmd-{}-3", std::process::id()));
        let live = parent.path().join("cmd-1-2");
        let other = parent.path().join("tasks");
        for dir in [&dead, &ours, &live, &other] {
            std::fs::create_dir(dir).unwrap();
        }
        let layout = CgroupLayout::V2 {
            parent: parent.path().to_path_buf(),
        };
        assert_eq!(layout.sweep_stale(), 1);
        assert!(!dead.exists(), "pid 4000000000 is not running");
        assert!(ours.exists() && live.exists() && other.exists());
    }

    #[test]
    fn a_leftover_of_the_same_name_is_taken_over() {
        let parent = tempfile::tempdir().unwrap();
        let layout = CgroupLayout::V2 {
            parent: parent.path().to_path_buf(),
        };
        // The next names this process will use, left behind by "another
        // process with our pid".
        let next = COUNTER.load(Ordering::Relaxed);
        for n in next..next + 4 {
            std::fs::create_dir(
                parent
                    .path()
                    .join(format!("cmd-{}-{n}", std::process::id())),
            )
            .unwrap();
        }
        // Plain directories stand in for cgroupfs: the limit files are
        // written into the new directory.
        let made = CommandCgroup::create(&layout, &Limits::default());
        let made = made.unwrap();
        assert_eq!(made.dirs.len(), 1);
        assert!(made.dirs[0].join("pids.max").is_file());
    }
}
