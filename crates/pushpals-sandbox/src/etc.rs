//! The sandbox's `/etc`: the entries programs need, copied once into a
//! private directory and bound read-only as one mount (one bind per entry
//! cost milliseconds per command).

use crate::bwrap::SandboxError;
use std::path::{Path, PathBuf};

/// Entries of `/etc` that programs need; the rest of `/etc` (shadow files,
/// tokens in npmrc, ...) stays out.
const ETC_ENTRIES: &[&str] = &[
    "passwd",
    "group",
    "hosts",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    // Not all of ssl/: ssl/private holds the host's private keys.
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "alternatives",
    "mime.types",
    "protocols",
    "services",
    "os-release",
    "debian_version",
    "java-17-openjdk",
    "maven",
    "magic",
    "magic.mime",
    "bash.bashrc",
    "profile",
    "inputrc",
    "locale.alias",
];

/// A staged `/etc`; a temporary one is removed with the last runner using it.
#[derive(Debug)]
pub(crate) struct StagedEtc {
    pub(crate) path: PathBuf,
    temporary: bool,
}

impl Drop for StagedEtc {
    fn drop(&mut self) {
        if self.temporary
            && let Some(base) = self.path.parent()
        {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

static STAGING_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Copies the `/etc` entries programs need into `<state_dir>/etc` (symlinks
/// kept as they are), replacing an earlier copy.
pub(crate) fn stage_etc(state_dir: Option<&Path>) -> Result<StagedEtc, SandboxError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = match state_dir {
        Some(dir) => dir.join("sandbox"),
        None => std::env::temp_dir().join(format!(
            "pushpals-sandbox-{}-{}",
            std::process::id(),
            STAGING_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )),
    };
    let fail = |message: String| SandboxError::Staging {
        path: base.clone(),
        message,
    };
    let etc = base.join("etc");
    if etc.exists() {
        std::fs::remove_dir_all(&etc).map_err(|e| fail(e.to_string()))?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&base)
        .map_err(|e| fail(e.to_string()))?;
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&etc)
        .map_err(|e| fail(e.to_string()))?;
    // Entries grouped by the directory they go into (`ssl/certs` into
    // `etc/ssl`), one cp per directory.
    let mut groups: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    for entry in ETC_ENTRIES {
        let source = Path::new("/etc").join(entry);
        if source.symlink_metadata().is_err() {
            continue;
        }
        let into = match Path::new(entry).parent() {
            Some(parent) if !parent.as_os_str().is_empty() => etc.join(parent),
            _ => etc.clone(),
        };
        match groups.iter_mut().find(|(dir, _)| *dir == into) {
            Some((_, sources)) => sources.push(source),
            None => groups.push((into, vec![source])),
        }
    }
    for (into, sources) in groups {
        std::fs::create_dir_all(&into).map_err(|e| fail(e.to_string()))?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .args(&sources)
            .arg(&into)
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| fail(format!("cannot run cp: {e}")))?;
        if !status.status.success() {
            return Err(fail(
                String::from_utf8_lossy(&status.stderr).trim().to_owned(),
            ));
        }
    }
    Ok(StagedEtc {
        path: etc,
        temporary: state_dir.is_none(),
    })
}
