//! A task's resident sandbox: one bubblewrap per worktree that stays up
//! while the task works, so its commands start by a fork inside it instead
//! of a fresh set of namespaces each. Each command still gets its own
//! session (process group), rlimits, cgroup and time limit, and the policy
//! decision made for it; a command granted network, the model gateway or a
//! session starts in a fresh sandbox of its own, so what it is granted is
//! never within reach of the task's other processes.
//!
//! The sandbox is found by what it binds (worktree, read-only paths, home,
//! stable path). It is started again when the worktree at its path is no
//! longer the directory it bound (a remount, a new worktree), ended by
//! [`Residents::release`] when the worktree goes, after [`pool::IDLE_LIMIT`]
//! unused, and, with its helper, when the server's end of its control
//! socket closes (the server stopped or died).

mod pool;
mod serve;
mod socket;
mod wire;

pub(crate) use pool::{ResidentKey, Residents};
pub(crate) use serve::serve;
use socket::{Message, nonblocking, receive, send};
pub(crate) use socket::{control_pair, exit_status};
pub(crate) use wire::{MAX_REQUEST, RunRequest};

use crate::spec::{CommandOutcome, OutputChunk, OutputStream, RunError};
use crate::supervise::{Process, forward, settle};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::socket::{MsgFlags, setsockopt, sockopt::PassCred};
use nix::unistd::Pid;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

/// How long a new sandbox may take to say it serves.
const START_LIMIT: Duration = Duration::from_secs(10);

/// One task's sandbox, up and serving.
#[derive(Debug)]
pub(crate) struct Resident {
    bwrap: std::sync::Mutex<tokio::process::Child>,
    control: AsyncFd<OwnedFd>,
    /// The worktree directory it bound (device and inode).
    bound: (u64, u64),
    last_used: std::sync::Mutex<Instant>,
}

impl Resident {
    /// Starts `bwrap` (prepared to run the helper's serving loop on
    /// `helper_end`) and waits until the helper says it serves.
    pub(crate) async fn start(
        mut bwrap: tokio::process::Command,
        server_end: OwnedFd,
        helper_end: OwnedFd,
        worktree: &Path,
    ) -> io::Result<Self> {
        let bound = identity(worktree)?;
        let inherited = helper_end.as_raw_fd();
        // SAFETY: runs between fork and exec and only makes one fcntl call
        // on a descriptor number taken before the fork.
        #[allow(unsafe_code)]
        unsafe {
            bwrap.pre_exec(move || {
                let fd = BorrowedFd::borrow_raw(inherited);
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
                Ok(())
            });
        }
        bwrap
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = bwrap.spawn()?;
        drop(helper_end);
        let control = nonblocking(server_end)?;
        let stderr = child.stderr.take();
        let serving = tokio::time::timeout(START_LIMIT, receive(&control)).await;
        match serving {
            Ok(Ok(Message { bytes, .. })) if bytes == [wire::SERVING] => {}
            other => {
                let _ = child.start_kill();
                let said = match stderr {
                    Some(mut stderr) => {
                        let mut text = String::new();
                        let _ = tokio::time::timeout(
                            Duration::from_secs(2),
                            tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text),
                        )
                        .await;
                        text.trim().to_owned()
                    }
                    None => String::new(),
                };
                let why = match other {
                    Err(_) => "it did not answer in time".to_owned(),
                    Ok(Err(error)) => error.to_string(),
                    Ok(Ok(_)) => "it ended before serving".to_owned(),
                };
                return Err(io::Error::other(format!("{why}: {said}")));
            }
        }
        if let Some(stderr) = stderr {
            tokio::spawn(log_lines(stderr));
        }
        Ok(Self {
            bwrap: std::sync::Mutex::new(child),
            control,
            bound,
            last_used: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// True while it runs and `worktree` is still the directory it bound.
    fn current(&self, worktree: &Path) -> bool {
        let alive = self
            .bwrap
            .lock()
            .map(|mut child| matches!(child.try_wait(), Ok(None)))
            .unwrap_or(false);
        // A helper that is gone has closed its end of the control socket.
        let mut peek = [0u8; 1];
        let open = matches!(
            nix::sys::socket::recv(
                self.control.get_ref().as_raw_fd(),
                &mut peek,
                MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
            ),
            Err(nix::errno::Errno::EAGAIN)
        );
        alive && open && identity(worktree).is_ok_and(|now| now == self.bound)
    }

    fn touch(&self) {
        if let Ok(mut last) = self.last_used.lock() {
            *last = Instant::now();
        }
    }

    fn idle(&self) -> Duration {
        self.last_used
            .lock()
            .map(|last| last.elapsed())
            .unwrap_or_default()
    }

    /// Runs one command in the sandbox: its output to `output`, moved into
    /// the cgroups whose `cgroup.procs` files are `cgroup_procs` before it
    /// runs, stopped at `timeout` or when `cancel` turns true.
    /// [`Attempt::SandboxGone`] when the sandbox ended before the command
    /// started (it did not run; another sandbox may run it).
    pub(crate) async fn run(
        &self,
        request: &RunRequest,
        cgroup_procs: &[PathBuf],
        timeout: Duration,
        output: &mpsc::Sender<OutputChunk>,
        cancel: watch::Receiver<bool>,
    ) -> Attempt {
        match self
            .start_command(request, cgroup_procs, timeout, output)
            .await
        {
            Ok(Started::Running {
                mut process,
                pid,
                started,
                readers,
            }) => Attempt::Ran(
                settle(
                    &mut process,
                    Some(pid),
                    started,
                    timeout,
                    cancel,
                    readers,
                    &|| {},
                )
                .await,
            ),
            Ok(Started::SandboxGone) => Attempt::SandboxGone,
            Err(error) => Attempt::Ran(Err(error)),
        }
    }

    async fn start_command(
        &self,
        request: &RunRequest,
        cgroup_procs: &[PathBuf],
        timeout: Duration,
        output: &mpsc::Sender<OutputChunk>,
    ) -> Result<Started, RunError> {
        self.touch();
        let message = request
            .encode()
            .map_err(|e| RunError::Spawn(io::Error::other(e.to_string())))?;
        let (stdout_read, stdout_write) = io::pipe().map_err(RunError::Spawn)?;
        let (stderr_read, stderr_write) = io::pipe().map_err(RunError::Spawn)?;
        let (ours, theirs) = control_pair().map_err(RunError::Spawn)?;
        setsockopt(&ours, PassCred, &true).map_err(|e| RunError::Spawn(e.into()))?;
        let handshake = nonblocking(ours).map_err(RunError::Spawn)?;
        let sent = send(
            &self.control,
            &message,
            &[
                stdout_write.as_raw_fd(),
                stderr_write.as_raw_fd(),
                theirs.as_raw_fd(),
            ],
        )
        .await;
        if sent.is_err() {
            return Ok(Started::SandboxGone);
        }
        // The command holds the write ends now; ours must close for its
        // output to end when it does.
        drop((stdout_write, stderr_write, theirs));
        let started = Instant::now();
        let readers = [
            (stdout_read, OutputStream::Stdout),
            (stderr_read, OutputStream::Stderr),
        ]
        .map(|(pipe, stream)| {
            tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(pipe))
                .map(|pipe| tokio::spawn(forward(pipe, stream, output.clone())))
                .ok()
        });
        let pid = match tokio::time::timeout(timeout, receive(&handshake)).await {
            Ok(Ok(Message {
                bytes,
                pid: Some(pid),
            })) if bytes == [wire::READY] => Pid::from_raw(pid),
            Ok(Ok(Message { bytes, .. })) if bytes.first() == Some(&wire::FAILED) => {
                return Err(RunError::Spawn(io::Error::other(
                    String::from_utf8_lossy(&bytes[1..]).into_owned(),
                )));
            }
            Ok(_) => return Ok(Started::SandboxGone),
            Err(_) => {
                return Err(RunError::Spawn(io::Error::other(
                    "the task's sandbox did not start the command within its time limit",
                )));
            }
        };
        for procs in cgroup_procs {
            // Dropping the handshake socket unanswered stops the command
            // before it runs.
            std::fs::write(procs, pid.as_raw().to_string()).map_err(|e| {
                RunError::Limits(format!("cannot move the command into its cgroup: {e}"))
            })?;
        }
        send(&handshake, &[wire::GO], &[])
            .await
            .map_err(RunError::Spawn)?;
        Ok(Started::Running {
            process: Box::new(Process::Resident { handshake, pid }),
            pid,
            started,
            readers,
        })
    }
}

/// How running a command in a resident sandbox went.
pub(crate) enum Attempt {
    /// It ran (or could not run for a reason of its own).
    Ran(Result<CommandOutcome, RunError>),
    /// The sandbox had ended; the command did not run.
    SandboxGone,
}

enum Started {
    Running {
        process: Box<Process>,
        pid: Pid,
        started: Instant,
        readers: [Option<tokio::task::JoinHandle<()>>; 2],
    },
    SandboxGone,
}

fn identity(path: &Path) -> io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|meta| (meta.dev(), meta.ino()))
}

/// What the helper says on its standard error, in the server's log.
async fn log_lines(stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::warn!(%line, "a task's resident sandbox");
    }
}
