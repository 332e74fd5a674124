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
//! [`Residents::release`] when the worktree goes, after [`IDLE_LIMIT`]
//! unused, and, with its helper, when the server's end of its control
//! socket closes (the server stopped or died).

mod serve;
mod wire;

pub(crate) use serve::serve;
pub(crate) use wire::{MAX_REQUEST, RunRequest};

use crate::spec::{CommandOutcome, OutputChunk, OutputStream, RunError};
use crate::supervise::{Process, forward, settle};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixCredentials, recvmsg, sendmsg, setsockopt, socketpair, sockopt::PassCred,
};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::sync::{Mutex, mpsc, watch};

/// A resident sandbox unused this long is ended.
pub(crate) const IDLE_LIMIT: Duration = Duration::from_secs(300);

/// How often idle sandboxes are looked for.
const IDLE_SWEEP: Duration = Duration::from_secs(30);

/// How long a new sandbox may take to say it serves.
const START_LIMIT: Duration = Duration::from_secs(10);

/// What a resident sandbox binds: commands whose specs agree on these can
/// share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ResidentKey {
    /// The worktree, bound writable.
    pub worktree: PathBuf,
    /// Extra read-only paths.
    pub read_only: Vec<PathBuf>,
    /// The private home, bound writable.
    pub home: Option<PathBuf>,
    /// The worktree's stable path.
    pub alias: Option<PathBuf>,
}

/// The resident sandboxes of one runner.
#[derive(Debug, Default)]
pub(crate) struct Residents {
    running: Mutex<HashMap<ResidentKey, Arc<Resident>>>,
    /// Set when a sandbox could not start: from then on commands start in
    /// fresh sandboxes, as before.
    broken: AtomicBool,
    sweeping: AtomicBool,
}

impl Residents {
    /// False once starting one has failed.
    pub(crate) fn usable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
    }

    /// The sandbox for `key`, started by `start` when there is none, it
    /// ended, or the worktree is no longer the directory it bound. `None`
    /// (and no further tries) when starting fails.
    pub(crate) async fn get(
        self: &Arc<Self>,
        key: ResidentKey,
        start: impl Future<Output = io::Result<Resident>>,
    ) -> Option<Arc<Resident>> {
        let mut running = self.running.lock().await;
        if let Some(resident) = running.get(&key) {
            if resident.current(&key.worktree) {
                resident.touch();
                return Some(Arc::clone(resident));
            }
            running.remove(&key);
        }
        match start.await {
            Ok(resident) => {
                let resident = Arc::new(resident);
                running.insert(key, Arc::clone(&resident));
                drop(running);
                self.sweep_idle_ones();
                Some(resident)
            }
            Err(error) => {
                self.broken.store(true, Ordering::Relaxed);
                tracing::warn!(
                    %error,
                    "a task's resident sandbox could not start; every command now starts in a fresh sandbox"
                );
                None
            }
        }
    }

    /// Forgets `resident` (found ended), so the next command starts anew.
    pub(crate) async fn forget(&self, resident: &Arc<Resident>) {
        self.running
            .lock()
            .await
            .retain(|_, kept| !Arc::ptr_eq(kept, resident));
    }

    /// Ends the sandboxes bound to `worktree` (once their running commands
    /// end).
    pub(crate) async fn release(&self, worktree: &Path) {
        self.running
            .lock()
            .await
            .retain(|key, _| key.worktree != worktree);
    }

    /// Starts, once, the sweep that ends sandboxes idle for [`IDLE_LIMIT`].
    fn sweep_idle_ones(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let residents: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE_SWEEP).await;
                let Some(residents) = residents.upgrade() else {
                    return;
                };
                residents.running.lock().await.retain(|_, resident| {
                    Arc::strong_count(resident) > 1 || resident.idle() < IDLE_LIMIT
                });
            }
        });
    }
}

/// A control socket pair: the server's end and the end the helper inherits
/// (its number goes on the helper's command line).
pub(crate) fn control_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

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

/// A message from a socket, with its sender's pid when credentials came.
struct Message {
    bytes: Vec<u8>,
    pid: Option<i32>,
}

/// Receives one message (empty at the end of the stream).
async fn receive(socket: &AsyncFd<OwnedFd>) -> io::Result<Message> {
    loop {
        let mut guard = socket.readable().await?;
        let result = guard.try_io(|fd| {
            let mut buffer = [0u8; 512];
            let mut space = nix::cmsg_space!(UnixCredentials);
            let mut iov = [IoSliceMut::new(&mut buffer)];
            let message = recvmsg::<()>(
                fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(io::Error::from)?;
            let pid = message.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|cmsg| match cmsg {
                    ControlMessageOwned::ScmCredentials(credentials) => Some(credentials.pid()),
                    _ => None,
                })
            });
            let length = message.bytes;
            Ok(Message {
                bytes: buffer[..length].to_vec(),
                pid,
            })
        });
        if let Ok(result) = result {
            return result;
        }
    }
}

/// Sends one message with `fds` attached.
async fn send(socket: &AsyncFd<OwnedFd>, message: &[u8], fds: &[RawFd]) -> io::Result<()> {
    loop {
        let mut guard = socket.writable().await?;
        let result = guard.try_io(|fd| {
            let rights = [ControlMessage::ScmRights(fds)];
            let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
            sendmsg::<()>(
                fd.as_raw_fd(),
                &[IoSlice::new(message)],
                cmsgs,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(io::Error::from)
        });
        match result {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => return Err(error),
            Err(_would_block) => {}
        }
    }
}

/// How a resident command ended, from the helper's report.
pub(crate) async fn exit_status(
    handshake: &AsyncFd<OwnedFd>,
) -> Result<std::process::ExitStatus, RunError> {
    let ended = || {
        RunError::Wait(io::Error::other(
            "the task's sandbox ended while the command ran",
        ))
    };
    let message = receive(handshake).await.map_err(RunError::Wait)?;
    let (tag, number) = match message.bytes.split_first() {
        Some((tag, rest)) => (*tag, <[u8; 4]>::try_from(rest).map_err(|_| ended())?),
        None => return Err(ended()),
    };
    let number = i32::from_le_bytes(number);
    match tag {
        wire::EXITED => Ok(std::process::ExitStatus::from_raw((number & 0xff) << 8)),
        wire::SIGNALLED => Ok(std::process::ExitStatus::from_raw(number & 0x7f)),
        _ => Err(ended()),
    }
}

fn nonblocking(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    // SAFETY: the AsyncFd owns the descriptor, which is neither replaced
    // nor closed while it is registered.
    #[allow(unsafe_code)]
    unsafe {
        AsyncFd::register(fd).map_err(io::Error::from)
    }
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
