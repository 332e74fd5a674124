//! The in-sandbox relay: inside a sandbox whose network namespace has only
//! loopback, it listens on a loopback port and carries each connection to
//! the orchestrator's proxy through a Unix socket bind-mounted into the
//! sandbox, while it runs the command. The proxy decides what is reachable.
//!
//! Usage (inside the sandbox):
//! `<relay> <listen address> <proxy socket> -- <program> [args...]`;
//! it exits with the command's status.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// Runs the relay with its command-line arguments (program name removed);
/// returns the exit code to exit with.
pub fn relay_main(args: &[String]) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("pushpals relay: {error}");
            125
        }
    }
}

fn run(args: &[String]) -> io::Result<i32> {
    let (Some(listen), Some(socket), Some("--")) =
        (args.first(), args.get(1), args.get(2).map(String::as_str))
    else {
        return Err(io::Error::other(
            "usage: <listen address> <proxy socket> -- <program> [args...]",
        ));
    };
    let Some(program) = args.get(3) else {
        return Err(io::Error::other("no program to run"));
    };
    let listener = TcpListener::bind(listen)?;
    let socket = socket.clone();
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
    let status = Command::new(program).args(&args[4..]).status()?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Copies both ways until either side closes.
fn splice(client: TcpStream, upstream: UnixStream) {
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
