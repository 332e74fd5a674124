//! The sockets between the runner and a resident sandbox's helper: the
//! control pair, one message received (with the sender's pid when
//! credentials came) or sent (with descriptors), and a command's end as
//! the helper reports it.

use super::wire;
use crate::spec::RunError;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixCredentials, recvmsg, sendmsg, socketpair,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use tokio::io::unix::AsyncFd;

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

/// A message from a socket, with its sender's pid when credentials came.
pub(crate) struct Message {
    pub(crate) bytes: Vec<u8>,
    pub(crate) pid: Option<i32>,
}

/// Receives one message (empty at the end of the stream).
pub(crate) async fn receive(socket: &AsyncFd<OwnedFd>) -> io::Result<Message> {
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
pub(crate) async fn send(
    socket: &AsyncFd<OwnedFd>,
    message: &[u8],
    fds: &[RawFd],
) -> io::Result<()> {
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

pub(crate) fn nonblocking(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
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
