//! The suites, one module per concern.

mod container_escapes;
mod escapes;
mod host_runner;
mod resident;
mod shell;
mod toolchains;

use pushpals_sandbox::{OutputChunk, OutputStream};
use tokio::sync::mpsc;

/// Everything a command wrote: its standard output and error.
pub(crate) async fn collect(mut rx: mpsc::Receiver<OutputChunk>) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(chunk) = rx.recv().await {
        match chunk.stream {
            OutputStream::Stdout => out.extend(chunk.bytes),
            OutputStream::Stderr => err.extend(chunk.bytes),
        }
    }
    (out, err)
}
