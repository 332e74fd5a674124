//! What the person adds to the sandbox in `[sandbox]`: read-only paths and
//! variables passed through, checked so that credentials never come with
//! them and nothing that changes which programs run does.

use crate::settings::SandboxSettings;
use std::path::Path;

/// Names of files and directories that hold credentials.
const CREDENTIAL_NAMES: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    "credentials",
    "credentials.toml",
    "hosts.yml",
];

/// Variables that change which programs run or what they load.
const RUNS_PROGRAMS: &[&str] = &[
    "PATH",
    "HOME",
    "SHELL",
    "BASH_ENV",
    "ENV",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "NODE_OPTIONS",
    "PERL5OPT",
    "RUBYOPT",
    "RUSTC_WRAPPER",
    "GIT_DIR",
];

/// Refuses `[sandbox] read_only_paths` and `pass_env` entries that would
/// let credentials or program-changing settings into the sandbox.
pub(crate) fn check(sandbox: &SandboxSettings) -> Result<(), String> {
    for path in &sandbox.read_only_paths {
        if !path.is_absolute() {
            return Err(format!(
                "[sandbox] read_only_paths: {} is not absolute; write the full path",
                path.display()
            ));
        }
        if let Some(why) = holds_credentials(path) {
            return Err(format!(
                "[sandbox] read_only_paths: {} {why}; name the toolchain's own directory instead",
                path.display()
            ));
        }
    }
    for name in &sandbox.pass_env {
        let upper = name.to_ascii_uppercase();
        let secret_like = [
            "TOKEN",
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "KEY",
            "CREDENTIAL",
            "AUTH",
        ]
        .iter()
        .any(|word| upper.contains(word));
        let runs = RUNS_PROGRAMS.contains(&name.as_str())
            || ["LD_", "DYLD_", "BASH_FUNC_"]
                .iter()
                .any(|p| name.starts_with(p));
        if name.is_empty() || name.contains('=') {
            return Err(format!(
                "[sandbox] pass_env: {name:?} is not a variable name"
            ));
        }
        if secret_like {
            return Err(format!(
                "[sandbox] pass_env: {name} looks like a secret, and secrets never reach the sandbox; models get keys through the gateway"
            ));
        }
        if runs {
            return Err(format!(
                "[sandbox] pass_env: {name} changes which programs run or what they load; the sandbox sets its own"
            ));
        }
    }
    Ok(())
}

/// Why a path would bring credentials, if it would: it is a credential
/// file or directory, holds one, or is a home directory.
fn holds_credentials(path: &Path) -> Option<String> {
    if let Some(name) = path.iter().find_map(|part| {
        let part = part.to_str()?;
        CREDENTIAL_NAMES.contains(&part).then_some(part)
    }) {
        return Some(format!("is or is inside {name}, which holds credentials"));
    }
    if path == Path::new("/")
        || path.parent() == Some(Path::new("/home"))
        || path == Path::new("/root")
    {
        return Some("is a whole home or the root, which holds credentials".into());
    }
    let inside = std::fs::read_dir(path).ok()?;
    inside.flatten().find_map(|entry| {
        let name = entry.file_name();
        let name = name.to_str()?;
        CREDENTIAL_NAMES
            .contains(&name)
            .then(|| format!("holds {name}, which holds credentials"))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sandbox(paths: &[&Path], env: &[&str]) -> SandboxSettings {
        SandboxSettings {
            read_only_paths: paths.iter().map(|p| p.to_path_buf()).collect(),
            pass_env: env.iter().map(|e| (*e).to_owned()).collect(),
            ..SandboxSettings::default()
        }
    }

    #[test]
    fn toolchains_pass_and_credentials_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        std::fs::create_dir_all(go.join("bin")).unwrap();
        assert_eq!(check(&sandbox(&[&go], &["GOPATH", "GOFLAGS"])), Ok(()));

        let home = dir.path().join("me");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let err = check(&sandbox(&[&home], &[])).unwrap_err();
        assert!(err.contains("holds .ssh"), "{err}");
        let err = check(&sandbox(&[&home.join(".ssh")], &[])).unwrap_err();
        assert!(err.contains("inside .ssh"), "{err}");
        let err = check(&sandbox(&[Path::new("/root")], &[])).unwrap_err();
        assert!(err.contains("whole home"), "{err}");
        let err = check(&sandbox(&[Path::new("relative/bin")], &[])).unwrap_err();
        assert!(err.contains("not absolute"), "{err}");

        for (name, why) in [
            ("GITHUB_TOKEN", "looks like a secret"),
            ("AWS_SECRET_ACCESS_KEY", "looks like a secret"),
            ("LD_PRELOAD", "changes which programs run"),
            ("PATH", "changes which programs run"),
            ("A=B", "not a variable name"),
        ] {
            let err = check(&sandbox(&[], &[name])).unwrap_err();
            assert!(err.contains(why), "{name}: {err}");
        }
    }
}
