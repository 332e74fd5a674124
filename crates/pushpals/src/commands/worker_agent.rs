//! External agents on a worker host: the ones it has (each adapter's
//! program found on its `PATH`, offered to the server with every poll),
//! and what an agent's command needs here: its program's install visible
//! read-only in the sandbox, a private home made of the files the server
//! prepared, and the record it leaves in that home read back.

use anyhow::{Context, Result, bail};
use base64::Engine;
use pushpals_agent::external;
use pushpals_core::worker_wire::{AgentLaunch, MAX_TRAJECTORY, OfferedAgent};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `open` does not follow a link at the last part of the path.
const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// The adapters whose programs are on this host's `PATH`.
pub(super) fn offered() -> Vec<OfferedAgent> {
    let search = search_path();
    external::builtin()
        .iter()
        .filter_map(|adapter| {
            let program = external::find_program(adapter.as_ref(), None, &search).ok()?;
            Some(OfferedAgent {
                name: adapter.name().to_owned(),
                program: program.to_string_lossy().into_owned(),
            })
        })
        .collect()
}

fn search_path() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default()
}

/// What the sandbox must see read-only for the agent `name`'s program to
/// run here: the package holding it, and a venv's Python.
pub(super) fn read_only_paths(name: &str) -> Result<Vec<PathBuf>> {
    let adapter = external::adapter(name, None).map_err(anyhow::Error::msg)?;
    let program = external::find_program(adapter.as_ref(), None, &search_path())
        .map_err(anyhow::Error::msg)?;
    let root = external::install_root(&program);
    Ok(external::venv_base_prefix(&root)
        .into_iter()
        .chain(std::iter::once(root))
        .collect())
}

/// Where the agent of `task`'s run keeps its private home on this host.
pub(super) fn home_dir(runs: &Path, task: &str) -> PathBuf {
    runs.join(format!("{task}.home"))
}

/// Makes the agent's private home at `home` afresh, of the files the
/// server sent (each within it; private to this host's user).
pub(super) fn make_home(home: &Path, launch: &AgentLaunch) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if home.exists() {
        std::fs::remove_dir_all(home)
            .with_context(|| format!("cannot clear the agent's home {}", home.display()))?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .with_context(|| format!("cannot create the agent's home {}", home.display()))?;
    for file in &launch.home {
        let relative = file.relative_path().map_err(anyhow::Error::msg)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.base64)
            .with_context(|| format!("the home file {} is not base64", file.path))?;
        let path = home.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // A name sent twice must not open an earlier link.
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(file.mode & 0o777)
            .custom_flags(NOFOLLOW)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut out, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode & 0o777))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    Ok(())
}

/// The record the agent left at `file` in `home` (at most
/// [`MAX_TRAJECTORY`] bytes), never read through a link: `None` when it
/// left none.
pub(super) fn read_trajectory(home: &Path, file: &str) -> Result<Option<String>> {
    let relative = pushpals_core::worker_wire::plain_path(file).map_err(anyhow::Error::msg)?;
    let path = home.join(relative);
    // Every directory on the way must be a directory of the home, not a
    // link the agent made to elsewhere.
    let mut at = home.to_path_buf();
    for part in Path::new(file)
        .parent()
        .into_iter()
        .flat_map(Path::components)
    {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!("{} is not a directory of the agent's home", at.display()),
            Err(_) => return Ok(None),
        }
    }
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(NOFOLLOW)
        .open(&path);
    let handle = match opened {
        Ok(handle) => handle,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    if !handle.metadata()?.is_file() {
        bail!("{} is not a file", path.display());
    }
    let mut bytes = Vec::new();
    handle
        .take(MAX_TRAJECTORY as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushpals_core::worker_wire::HomeFile;

    fn launch(files: &[(&str, &str)]) -> AgentLaunch {
        AgentLaunch {
            name: "codex".into(),
            home: files
                .iter()
                .map(|(path, text)| HomeFile {
                    path: (*path).into(),
                    base64: base64::engine::general_purpose::STANDARD.encode(text),
                    mode: 0o600,
                })
                .collect(),
            trajectory: None,
            gateway: true,
        }
    }

    #[test]
    fn a_home_is_made_of_the_files_sent() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("t1.home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("left-over"), "old").unwrap();
        make_home(&home, &launch(&[(".codex/config.toml", "model = 'm'\n")])).unwrap();
        assert_eq!(
            std::fs::read_to_string(home.join(".codex/config.toml")).unwrap(),
            "model = 'm'\n"
        );
        let mode = std::fs::metadata(home.join(".codex/config.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!home.join("left-over").exists(), "the home is made afresh");
    }

    #[test]
    fn a_home_file_outside_the_home_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("t1.home");
        let refused = make_home(&home, &launch(&[("../escaped", "x")])).unwrap_err();
        assert!(
            format!("{refused:#}").contains("relative and plain"),
            "{refused:#}"
        );
        assert!(!dir.path().join("escaped").exists());
        let refused = make_home(&home, &launch(&[("a", "x"), ("a", "y")])).unwrap_err();
        assert!(
            format!("{refused:#}").contains("cannot write"),
            "{refused:#}"
        );
    }

    #[test]
    fn a_record_is_read_but_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".agent")).unwrap();
        std::fs::write(home.join(".agent/record.json"), "{\"steps\":[]}").unwrap();
        assert_eq!(
            read_trajectory(&home, ".agent/record.json")
                .unwrap()
                .as_deref(),
            Some("{\"steps\":[]}")
        );
        assert_eq!(read_trajectory(&home, "missing.json").unwrap(), None);
        // The agent pointed its record, or a directory on the way, at a
        // file of this host.
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "host secret").unwrap();
        std::os::unix::fs::symlink(&secret, home.join("linked.json")).unwrap();
        assert!(read_trajectory(&home, "linked.json").is_err());
        std::os::unix::fs::symlink(dir.path(), home.join("up")).unwrap();
        let refused = read_trajectory(&home, "up/secret").unwrap_err();
        assert!(
            format!("{refused:#}").contains("not a directory"),
            "{refused:#}"
        );
    }
}
