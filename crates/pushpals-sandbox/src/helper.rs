//! The in-sandbox helper: the first program bubblewrap starts. It confines
//! itself and the command with Landlock (a second layer under the mount
//! namespace: only the listed paths are writable, everything else is
//! read-only), and, for a command granted network, relays connections from
//! a loopback port to the orchestrator's proxy through a Unix socket
//! bind-mounted into the sandbox. Then it runs the command.
//!
//! Usage (inside the sandbox):
//! `[--relay <listen address> <socket>]... [--stdio <socket>] [--writable <path>]... -- <program> [args...]`,
//! or, for a task's resident sandbox, `[--writable <path>]... --serve <fd>`:
//! confined once, it serves run requests on that control socket (see
//! `crate::resident`).
//! With `--stdio`, the command's standard input and output are a connection
//! to that socket (an agent's structured session).
//! Without `--relay` it becomes the command (exec); with one or more (the
//! network proxy, the model gateway), it exits with the command's status.
//!
//! Over 400 lines: one program that runs first inside every sandbox (arguments, Landlock, relays, a session's pipes, the hook mode); its serving loop lives in `resident::serve`.

use landlock::{
    ABI, Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
};
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

/// The Landlock ABI the rules are written for; older kernels get the best
/// they support.
const LANDLOCK_ABI: ABI = ABI::V5;

/// Exit code when the helper itself fails (the command did not run).
const HELPER_FAILED: i32 = 125;

/// Parsed arguments.
struct Plan {
    relays: Vec<(String, String)>,
    stdio: Option<String>,
    writable: Vec<String>,
    /// What runs once confined.
    then: Then,
}

/// What the helper does once confined.
#[derive(Debug, PartialEq, Eq)]
enum Then {
    /// Runs one program.
    Run { program: String, args: Vec<String> },
    /// Serves run requests on the control socket at this descriptor.
    Serve(RawFd),
}

fn parse(args: &[String]) -> io::Result<Plan> {
    let usage = || {
        io::Error::other(
            "usage: [--relay <address> <socket>]... [--stdio <socket>] [--writable <path>]... (-- <program> [args...] | --serve <fd>)",
        )
    };
    let mut relays = Vec::new();
    let mut stdio = None;
    let mut writable = Vec::new();
    let mut i = 0;
    loop {
        match args.get(i).map(String::as_str) {
            Some("--relay") => {
                let (Some(address), Some(socket)) = (args.get(i + 1), args.get(i + 2)) else {
                    return Err(usage());
                };
                relays.push((address.clone(), socket.clone()));
                i += 3;
            }
            Some("--stdio") => {
                stdio = Some(args.get(i + 1).ok_or_else(usage)?.clone());
                i += 2;
            }
            Some("--writable") => {
                writable.push(args.get(i + 1).ok_or_else(usage)?.clone());
                i += 2;
            }
            Some("--") => break,
            Some("--serve") => {
                let fd = args
                    .get(i + 1)
                    .and_then(|fd| fd.parse::<RawFd>().ok())
                    .filter(|fd| *fd > 2)
                    .ok_or_else(usage)?;
                if i + 2 != args.len() || !relays.is_empty() || stdio.is_some() {
                    return Err(usage());
                }
                return Ok(Plan {
                    relays,
                    stdio,
                    writable,
                    then: Then::Serve(fd),
                });
            }
            _ => return Err(usage()),
        }
    }
    let program = args.get(i + 1).ok_or_else(usage)?.clone();
    Ok(Plan {
        relays,
        stdio,
        writable,
        then: Then::Run {
            program,
            args: args[i + 2..].to_vec(),
        },
    })
}

/// Runs the helper with its arguments (program name removed); returns the
/// exit code to exit with.
pub fn helper_main(args: &[String]) -> i32 {
    if let Some(("hook", rest)) = args
        .split_first()
        .map(|(first, rest)| (first.as_str(), rest))
    {
        return hook(rest);
    }
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("pushpals sandbox helper: {error}");
            HELPER_FAILED
        }
    }
}

fn run(args: &[String]) -> io::Result<i32> {
    let plan = parse(args)?;
    if !plan.writable.is_empty() {
        confine(&plan.writable)?;
    }
    let (program, args) = match plan.then {
        Then::Run { program, args } => (program, args),
        Then::Serve(fd) => {
            // SAFETY: the descriptor was left open for this helper by the
            // runner that started the sandbox; nothing else here owns it.
            #[allow(unsafe_code)]
            let control = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
            return crate::resident::serve(control);
        }
    };
    let mut command = Command::new(&program);
    command.args(&args);
    // The session's two directions travel through pipes, not the socket
    // itself: a program may watch its standard input and output apart, and
    // one socket as both confuses some (Python's asyncio, for one, replaces
    // its stdin reader with its stdout watcher on the same descriptor).
    let session = match &plan.stdio {
        Some(socket) => {
            let session = UnixStream::connect(socket).map_err(|e| {
                io::Error::other(format!("cannot reach the session socket {socket}: {e}"))
            })?;
            let (stdin_read, stdin_write) = io::pipe()?;
            let (stdout_read, stdout_write) = io::pipe()?;
            command.stdin(stdin_read).stdout(stdout_write);
            Some((session, stdin_write, stdout_read))
        }
        None => None,
    };
    if plan.relays.is_empty() && session.is_none() {
        // Become the command.
        return Err(command.exec());
    }
    for (address, socket) in plan.relays {
        let listener = TcpListener::bind(&address)?;
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let socket = socket.clone();
                std::thread::spawn(move || {
                    if let Ok(upstream) = UnixStream::connect(&socket) {
                        splice(client, upstream);
                    }
                });
            }
        });
    }
    let mut child = command.spawn()?;
    // The command's ends of the pipes are its own now: closing ours lets
    // its output end when it exits.
    drop(command);
    let output = match session {
        Some((session, mut stdin_write, mut stdout_read)) => {
            let mut from_session = session.try_clone()?;
            std::thread::spawn(move || {
                pump(&mut from_session, &mut stdin_write);
            });
            let mut to_session = session;
            let (done, finished) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                pump(&mut stdout_read, &mut to_session);
                let _ = to_session.shutdown(Shutdown::Write);
                let _ = done.send(());
            });
            Some(finished)
        }
        None => None,
    };
    let status = child.wait()?;
    if let Some(finished) = output {
        // What it wrote last reaches the session, unless a process it left
        // behind holds its output open.
        let _ = finished.recv_timeout(std::time::Duration::from_secs(2));
    }
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Copies from `from` to `to` until `from` ends or either fails, a read at
/// a time: each line of a session goes on as soon as it is written.
fn pump(from: &mut impl io::Read, to: &mut impl io::Write) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                if to
                    .write_all(&buffer[..n])
                    .and_then(|()| to.flush())
                    .is_err()
                {
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Restricts this process and its children: read and execute anywhere,
/// write only beneath `writable`. A kernel without Landlock leaves the
/// mount namespace as the only layer.
fn confine(writable: &[String]) -> io::Result<()> {
    let error = |e: landlock::RulesetError| io::Error::other(format!("landlock: {e}"));
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .map_err(error)?
        .create()
        .map_err(error)?
        .add_rule(PathBeneath::new(
            PathFd::new("/").map_err(|e| io::Error::other(format!("landlock: {e}")))?,
            AccessFs::from_read(LANDLOCK_ABI),
        ))
        .map_err(error)?;
    for path in writable {
        let fd =
            PathFd::new(path).map_err(|e| io::Error::other(format!("landlock: {path}: {e}")))?;
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, AccessFs::from_all(LANDLOCK_ABI)))
            .map_err(error)?;
    }
    // Best effort by design: on a kernel without Landlock the status says
    // "not enforced" and the mount namespace stays the only layer.
    ruleset.restrict_self().map_err(error)?;
    Ok(())
}

/// Copies both ways until either side closes.
fn splice(client: TcpStream, upstream: UnixStream) {
    // Small writes (a streamed answer's events) go out at once: without
    // this, Nagle's algorithm and delayed ACKs add ~40 ms per exchange.
    let _ = client.set_nodelay(true);
    let (Ok(mut client_read), Ok(mut upstream_write)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let forward = std::thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(Shutdown::Write);
    });
    let (mut upstream_read, mut client_write) = (upstream, client);
    let _ = io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = forward.join();
}

/// The newest Landlock ABI this kernel enforces (1 to 7), or `None` when
/// the kernel has no Landlock: found by making (not applying) a ruleset
/// that demands each ABI in turn.
pub fn landlock_abi() -> Option<u8> {
    use landlock::{CompatLevel, Compatible};
    let versions = [
        (7, ABI::V7),
        (6, ABI::V6),
        (5, ABI::V5),
        (4, ABI::V4),
        (3, ABI::V3),
        (2, ABI::V2),
        (1, ABI::V1),
    ];
    versions.into_iter().find_map(|(number, abi)| {
        Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(abi))
            .and_then(|ruleset| ruleset.create())
            .ok()
            .map(|_| number)
    })
}

/// Exit code that makes an agent's hook block the tool call.
const HOOK_BLOCKS: i32 = 2;

/// `hook <path>`: an agent's tool-call hook inside the sandbox. Sends the
/// hook's JSON (stdin) to the gateway at `<path>` with the task's token
/// (`$PUSHPALS_GATEWAY_TOKEN`) and prints the judge's answer. Any failure
/// blocks the tool call (fails closed), with the reason on stderr.
fn hook(args: &[String]) -> i32 {
    match ask_judge(args) {
        Ok(answer) => {
            println!("{answer}");
            0
        }
        Err(error) => {
            eprintln!("Push Pals could not judge this tool call, so it is blocked: {error}");
            HOOK_BLOCKS
        }
    }
}

fn ask_judge(args: &[String]) -> io::Result<String> {
    use std::io::{Read, Write};
    let [path] = args else {
        return Err(io::Error::other("usage: hook <gateway path>"));
    };
    let token = std::env::var("PUSHPALS_GATEWAY_TOKEN")
        .map_err(|_| io::Error::other("PUSHPALS_GATEWAY_TOKEN is not set"))?;
    let mut body = Vec::new();
    io::stdin().read_to_end(&mut body)?;
    let mut stream = TcpStream::connect(crate::GATEWAY_ADDRESS)?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        crate::GATEWAY_ADDRESS,
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("the gateway's answer has no body"))?;
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status != "200" {
        return Err(io::Error::other(format!(
            "the gateway answered {status}: {body}"
        )));
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn arguments_parse_and_bad_ones_are_refused() {
        let plan = parse(&strings(&[
            "--relay",
            "127.0.0.1:1",
            "/s",
            "--relay",
            "127.0.0.1:2",
            "/g",
            "--writable",
            "/w",
            "--",
            "sh",
            "-c",
            "x",
        ]))
        .unwrap();
        assert_eq!(
            plan.relays,
            [
                ("127.0.0.1:1".into(), "/s".into()),
                ("127.0.0.1:2".into(), "/g".into())
            ]
        );
        assert_eq!(plan.writable, ["/w"]);
        assert_eq!(
            plan.then,
            Then::Run {
                program: "sh".into(),
                args: strings(&["-c", "x"])
            }
        );
        let serve = parse(&strings(&["--writable", "/w", "--serve", "5"])).unwrap();
        assert_eq!(serve.then, Then::Serve(5));
        assert!(parse(&strings(&["--serve", "1"])).is_err());
        assert!(parse(&strings(&["--serve", "x"])).is_err());
        assert!(parse(&strings(&["--serve", "5", "extra"])).is_err());
        assert!(parse(&strings(&["--relay", "a", "b", "--serve", "5"])).is_err());
        assert!(parse(&strings(&["--relay", "x"])).is_err());
        assert!(parse(&strings(&["--",])).is_err());
        assert!(parse(&strings(&["sh"])).is_err());
    }
}
