//! A shell line in a directory, for this crate's tests.

use std::path::Path;
use std::process::Command;

/// Runs `line` with `sh -c` in `dir`; it must succeed.
pub(crate) fn sh(dir: &Path, line: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "{line}");
}
