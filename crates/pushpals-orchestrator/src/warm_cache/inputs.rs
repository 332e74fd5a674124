//! What a warm cache is made from, and the key that names it: the setup
//! command and what it may reach, the checks that warm the build, the lock
//! files and manifests at the base commit, and the toolchains' versions.
//! Anything else in the base commit may change and the cache still serves
//! (builds are incremental).

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Files whose change makes a new cache: dependency manifests, lock files,
/// toolchain pins. Only at the top of the repository.
pub(crate) const LOCK_FILES: &[&str] = &[
    "Cargo.lock",
    "Cargo.toml",
    "rust-toolchain",
    "rust-toolchain.toml",
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    ".nvmrc",
    ".node-version",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
    "requirements-dev.txt",
    "requirements-test.txt",
    "dev-requirements.txt",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    ".python-version",
    "go.mod",
    "go.sum",
];

/// The inputs of one cache, as recorded in its event and manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CacheInputs {
    /// The setup command line, if any.
    pub setup: Option<String>,
    /// What the setup may reach (registry names and host patterns).
    pub reach: Vec<String>,
    /// The check command lines that warm the build.
    pub checks: Vec<String>,
    /// Each lock file at the base commit with its blob id (which names
    /// its content).
    pub lock_files: Vec<(String, String)>,
    /// The toolchains' own words about their versions.
    pub toolchains: Vec<String>,
}

impl CacheInputs {
    /// The cache's name: the first 32 hex digits of the inputs' SHA-256.
    pub(crate) fn key(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let digest = hex::encode(Sha256::digest(&bytes));
        digest[..32].to_owned()
    }
}

/// `rustc`, `python3` and `node` as they name their versions on this
/// machine (the ones the sandbox sees first are the same programs).
pub(crate) fn toolchain_versions() -> Vec<String> {
    let mut versions = Vec::new();
    for (program, flag) in [
        ("rustc", "--version"),
        ("python3", "--version"),
        ("node", "--version"),
    ] {
        if let Ok(output) = std::process::Command::new(program).arg(flag).output()
            && output.status.success()
        {
            let text = if output.stdout.is_empty() {
                output.stderr
            } else {
                output.stdout
            };
            versions.push(format!(
                "{program}: {}",
                String::from_utf8_lossy(&text).trim()
            ));
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_input_changes_the_key_and_equal_inputs_keep_it() {
        let inputs = CacheInputs {
            setup: Some("npm ci".into()),
            reach: vec!["npm".into()],
            checks: vec!["npm test".into()],
            lock_files: vec![("package-lock.json".into(), "9e26dfee".into())],
            toolchains: vec!["node: v20".into()],
        };
        let key = inputs.key();
        assert_eq!(key.len(), 32);
        assert_eq!(inputs.clone().key(), key);
        let mut changed = inputs.clone();
        changed.lock_files[0].1 = "0a1b2c3d".into();
        assert_ne!(changed.key(), key);
        let mut changed = inputs.clone();
        changed.toolchains[0] = "node: v22".into();
        assert_ne!(changed.key(), key);
        let mut changed = inputs;
        changed.setup = None;
        assert_ne!(changed.key(), key);
    }
}
