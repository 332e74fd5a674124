//! The helper's loop inside a task's resident sandbox: it starts each
//! command it is sent in its own session (process group) with its own
//! rlimits, reports how it ended, and, whenever no command runs, kills
//! whatever earlier commands left behind, so nothing outlives its command
//! for long even without cgroups. It is single-threaded, so starting a
//! command (a fork) never races another thread's locks.

use super::wire::{EXITED, FAILED, GO, MAX_REQUEST, READY, RunRequest, SERVING, SIGNALLED};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::setrlimit;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recv, recvmsg, send};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, setsid};
use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Serves run requests on `control` until the runner closes it; then kills
/// every process left in the sandbox and returns.
pub(crate) fn serve(control: OwnedFd) -> io::Result<i32> {
    // Inherited open across bubblewrap's exec; no command may inherit it
    // (it could start processes outside its own cgroup).
    nix::fcntl::fcntl(
        &control,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(io::Error::from)?;
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
    // Commands may not trace or read into the helper that reports how
    // they ended (they have no CAP_SYS_PTRACE to override this).
    nix::sys::prctl::set_dumpable(false).map_err(io::Error::from)?;
    let mut children = SigSet::empty();
    children.add(Signal::SIGCHLD);
    children.thread_block().map_err(io::Error::from)?;
    let reaped = SignalFd::with_flags(&children, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(io::Error::from)?;
    send_all(&control, &[SERVING])?;
    let mut running: HashMap<i32, OwnedFd> = HashMap::new();
    let mut buffer = vec![0u8; MAX_REQUEST + 1];
    loop {
        let mut fds = [
            PollFd::new(control.as_fd(), PollFlags::POLLIN),
            PollFd::new(reaped.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
        let control_ready = fds[0].any().unwrap_or(false);
        let children_ended = fds[1].any().unwrap_or(false);
        if children_ended {
            while let Ok(Some(_)) = reaped.read_signal() {}
            reap(&mut running);
        }
        if control_ready {
            match receive(&control, &mut buffer) {
                Received::Request(message, fds) => start(&message, fds, &children, &mut running),
                Received::Nothing => {}
                Received::Closed => {
                    kill_leftovers();
                    return Ok(0);
                }
            }
        }
    }
}

enum Received {
    Request(Vec<u8>, Vec<OwnedFd>),
    Nothing,
    Closed,
}

fn receive(control: &OwnedFd, buffer: &mut [u8]) -> Received {
    let mut space = nix::cmsg_space!([RawFd; 3]);
    let mut iov = [IoSliceMut::new(buffer)];
    let message = match recvmsg::<()>(
        control.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(message) => message,
        Err(Errno::EAGAIN | Errno::EINTR) => return Received::Nothing,
        Err(_) => return Received::Closed,
    };
    let mut fds = Vec::new();
    if let Ok(cmsgs) = message.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                for fd in raw {
                    // SAFETY: descriptors received with SCM_RIGHTS are new
                    // entries in this process's table that nothing else owns.
                    #[allow(unsafe_code)]
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
    }
    let (length, truncated) = (message.bytes, message.flags.contains(MsgFlags::MSG_TRUNC));
    if length == 0 && fds.is_empty() {
        return Received::Closed;
    }
    let mut bytes = iov[0].to_vec();
    bytes.truncate(if truncated { 0 } else { length });
    Received::Request(bytes, fds)
}

/// Starts one requested command; tells its socket when it cannot.
fn start(message: &[u8], fds: Vec<OwnedFd>, blocked: &SigSet, running: &mut HashMap<i32, OwnedFd>) {
    let Ok::<[OwnedFd; 3], _>([stdout, stderr, socket]) = fds.try_into() else {
        return;
    };
    let request = match RunRequest::decode(message) {
        Ok(request) => request,
        Err(error) => {
            report_failure(&socket, &error.to_string());
            return;
        }
    };
    let rlimits: Vec<_> = request
        .rlimits
        .iter()
        .filter_map(|(name, value)| Some((crate::limits::resource(name)?, *value)))
        .collect();
    let mut command = Command::new(&request.shell);
    command
        .arg("-c")
        .arg(&request.line)
        .current_dir(&request.cwd)
        .env_clear()
        .envs(request.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    let handshake = socket.as_raw_fd();
    let unblock = *blocked;
    // SAFETY: the closure runs in the forked child of this single-threaded
    // process and only makes system calls (setsid, sigprocmask, setrlimit,
    // send, recv) on data prepared before the fork.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            setsid()?;
            unblock.thread_unblock()?;
            for (resource, value) in &rlimits {
                setrlimit(*resource, *value, *value)?;
            }
            // The runner reads this process's id from the credentials
            // attached to this byte, moves it into its cgroup, then says go.
            send(handshake, &[READY], MsgFlags::MSG_NOSIGNAL)?;
            let mut answer = [0u8; 1];
            match recv(handshake, &mut answer, MsgFlags::empty())? {
                1 if answer[0] == GO => Ok(()),
                _ => Err(io::Error::from(io::ErrorKind::ConnectionAborted)),
            }
        });
    }
    match command.spawn() {
        Ok(child) => {
            if let Ok(pid) = i32::try_from(child.id()) {
                running.insert(pid, socket);
            }
        }
        Err(error) => report_failure(&socket, &format!("cannot start the command: {error}")),
    }
}

fn report_failure(socket: &OwnedFd, message: &str) {
    let mut reply = vec![FAILED];
    reply.extend_from_slice(message.as_bytes());
    let _ = send_all(socket, &reply);
}

/// Collects every ended child; tells each command's socket how it ended.
fn reap(running: &mut HashMap<i32, OwnedFd>) {
    loop {
        let (pid, tag, number) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, EXITED, code),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, SIGNALLED, signal as i32),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => break,
        };
        if let Some(socket) = running.remove(&pid.as_raw()) {
            let mut reply = vec![tag];
            reply.extend_from_slice(&number.to_le_bytes());
            let _ = send_all(&socket, &reply);
            if running.is_empty() {
                kill_leftovers();
            }
        }
    }
}

/// Kills every process in the sandbox but bubblewrap's init and this one:
/// what earlier commands left running (a daemon that left its group).
fn kill_leftovers() {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid > 1
            && pid != own
            && let Ok(pid) = i32::try_from(pid)
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn send_all(socket: &OwnedFd, message: &[u8]) -> io::Result<()> {
    send(socket.as_raw_fd(), message, MsgFlags::MSG_NOSIGNAL)
        .map(|_| ())
        .map_err(io::Error::from)
}
