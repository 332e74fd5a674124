//! `pushpals`: the orchestrator server and the command line that talks to it.

#![forbid(unsafe_code)]

#[macro_use]
mod terminal;
mod cli;
mod client;
mod commands;
mod doctor;
mod event_lines;
mod paths;
mod render;
mod serve;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // TLS for the client and the forge goes through rustls with ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    if let cli::Command::SandboxHelper { args } = &cli.command {
        std::process::exit(pushpals_sandbox::helper::helper_main(args));
    }
    // `serve` sets up logs and traces itself, once it has read its
    // settings.
    let _telemetry = if matches!(cli.command, cli::Command::Serve(_)) {
        None
    } else {
        match telemetry::init(None) {
            Ok(telemetry) => Some(telemetry),
            Err(error) => {
                eprintln!("error: {error:#}");
                return ExitCode::FAILURE;
            }
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
