//! The messages between the runner and the helper inside a task's resident
//! sandbox.
//!
//! The control socket (a `SOCK_SEQPACKET` pair, one message per request)
//! carries run requests: NUL-separated fields, with three descriptors
//! attached (the command's stdout and stderr pipes, and the command's own
//! socket). On the command's socket the command first sends one byte whose
//! credentials tell the runner its process id outside the sandbox; the
//! runner answers [`GO`] once the process is in its cgroup; the helper
//! ends with [`EXITED`] or [`SIGNALLED`] and a number, or [`FAILED`] and a
//! message when the command could not start.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// The command is ready and waits for [`GO`]; its credentials carry its pid.
pub(crate) const READY: u8 = b'p';
/// The runner lets the command run.
pub(crate) const GO: u8 = b'g';
/// The command exited; four bytes of exit code follow (little-endian).
pub(crate) const EXITED: u8 = b'x';
/// The command was killed; four bytes of signal number follow.
pub(crate) const SIGNALLED: u8 = b's';
/// The command could not start; a message follows.
pub(crate) const FAILED: u8 = b'e';
/// The helper is confined and serving (sent once on the control socket).
pub(crate) const SERVING: u8 = b'r';

/// The largest request sent to a resident sandbox; a longer command line
/// runs in a fresh sandbox instead.
pub(crate) const MAX_REQUEST: usize = 96 * 1024;

/// One command for the resident helper to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunRequest {
    /// The directory it starts in.
    pub cwd: PathBuf,
    /// The shell that runs the line.
    pub shell: PathBuf,
    /// The command line.
    pub line: String,
    /// Resource limits: `(name, value)`, names as `crate::limits::resource` reads them.
    pub rlimits: Vec<(String, u64)>,
    /// The whole environment.
    pub env: Vec<(OsString, OsString)>,
}

/// Why a request cannot be encoded or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum WireError {
    /// A field holds a NUL byte, which no command line or variable can.
    #[error("the {0} contains a NUL byte")]
    Nul(&'static str),
    /// The message is not a request.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

impl RunRequest {
    /// The request as one message.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut fields: Vec<(&'static str, Vec<u8>)> = vec![
            ("kind", b"run".to_vec()),
            ("directory", self.cwd.as_os_str().as_bytes().to_vec()),
            ("shell", self.shell.as_os_str().as_bytes().to_vec()),
            ("command line", self.line.as_bytes().to_vec()),
            ("limit count", self.rlimits.len().to_string().into_bytes()),
        ];
        for (name, value) in &self.rlimits {
            fields.push(("limit", format!("{name}={value}").into_bytes()));
        }
        for (name, value) in &self.env {
            if name.as_bytes().contains(&b'=') || name.is_empty() {
                return Err(WireError::Malformed(
                    "a variable's name is empty or holds '='",
                ));
            }
            let mut pair = name.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            fields.push(("environment", pair));
        }
        let mut message = Vec::new();
        for (what, field) in fields {
            if field.contains(&0) {
                return Err(WireError::Nul(what));
            }
            message.extend_from_slice(&field);
            message.push(0);
        }
        Ok(message)
    }

    /// Reads a message made by [`RunRequest::encode`].
    pub(crate) fn decode(message: &[u8]) -> Result<Self, WireError> {
        let body = message
            .strip_suffix(&[0])
            .ok_or(WireError::Malformed("no terminator"))?;
        let mut fields = body.split(|byte| *byte == 0);
        let mut next = |what: &'static str| fields.next().ok_or(WireError::Malformed(what));
        if next("kind")? != b"run" {
            return Err(WireError::Malformed("unknown kind"));
        }
        let cwd = PathBuf::from(OsString::from_vec(next("directory")?.to_vec()));
        let shell = PathBuf::from(OsString::from_vec(next("shell")?.to_vec()));
        let line = String::from_utf8(next("command line")?.to_vec())
            .map_err(|_| WireError::Malformed("the command line is not UTF-8"))?;
        let count: usize = std::str::from_utf8(next("limit count")?)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or(WireError::Malformed("limit count"))?;
        let mut rlimits = Vec::with_capacity(count.min(8));
        for _ in 0..count {
            let field = std::str::from_utf8(next("limit")?)
                .map_err(|_| WireError::Malformed("limit is not text"))?;
            let (name, value) = field
                .split_once('=')
                .ok_or(WireError::Malformed("limit without '='"))?;
            if crate::limits::resource(name).is_none() {
                return Err(WireError::Malformed("unknown limit"));
            }
            let value = value
                .parse()
                .map_err(|_| WireError::Malformed("limit is not a number"))?;
            rlimits.push((name.to_owned(), value));
        }
        let mut env = Vec::new();
        for pair in fields {
            let split = pair
                .iter()
                .position(|byte| *byte == b'=')
                .filter(|at| *at > 0)
                .ok_or(WireError::Malformed("variable without a name"))?;
            env.push((
                OsString::from_vec(pair[..split].to_vec()),
                OsString::from_vec(pair[split + 1..].to_vec()),
            ));
        }
        Ok(Self {
            cwd,
            shell,
            line,
            rlimits,
            env,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RunRequest {
        RunRequest {
            cwd: "/w/t1".into(),
            shell: "/usr/bin/bash".into(),
            line: "echo 'a=b' | wc -c".into(),
            rlimits: vec![("cpu".into(), 60), ("nproc".into(), 64)],
            env: vec![
                ("PATH".into(), "/usr/bin".into()),
                ("EMPTY".into(), "".into()),
                ("EQ".into(), "x=y".into()),
            ],
        }
    }

    #[test]
    fn a_request_survives_the_round_trip() {
        let original = request();
        let decoded = RunRequest::decode(&original.encode().unwrap()).unwrap();
        assert_eq!(decoded, original);
    }

    #[test]
    fn nul_bytes_and_bad_names_are_refused_when_encoding() {
        let mut bad = request();
        bad.line = "echo \0".into();
        assert_eq!(bad.encode(), Err(WireError::Nul("command line")));
        let mut bad = request();
        bad.env.push(("A=B".into(), "c".into()));
        assert!(matches!(bad.encode(), Err(WireError::Malformed(_))));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = request().encode().unwrap();
        assert!(RunRequest::decode(&good[..good.len() - 1]).is_err());
        assert!(RunRequest::decode(b"stop\0").is_err());
        assert!(RunRequest::decode(b"run\0/w\0/bin/sh\0true\0x\0").is_err());
        assert!(RunRequest::decode(b"run\0/w\0/bin/sh\0true\x001\0mem=5\0").is_err());
        assert!(RunRequest::decode(b"run\0/w\0/bin/sh\0true\x000\0=v\0").is_err());
        assert!(RunRequest::decode(b"run\0/w\0/bin/sh\0true\x000\0").is_ok());
    }
}
