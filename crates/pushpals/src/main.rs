//! `pushpals`: the orchestrator server and the command line that talks to it.

#![forbid(unsafe_code)]

mod cli;
mod client;
mod commands;
mod doctor;
mod paths;
mod render;
mod serve;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // TLS for the client and the forge goes through rustls with ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    if let cli::Command::SandboxHelper { args } = &cli.command {
        std::process::exit(pushpals_sandbox::helper::helper_main(args));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("PUSHPALS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,pushpals=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
