//! The toolchains a person installed under their home, found and made
//! visible read-only in the sandbox with the variables that point the tools
//! at them: rustup and cargo's caches, pyenv, nvm, Go's module cache and
//! SDKs, Maven's and Gradle's dependency caches. Credentials that live
//! beside them (`~/.cargo/credentials*`, `~/.m2/settings.xml`,
//! `~/.gradle/gradle.properties`) are never among them.

use crate::SANDBOX_HOME;
use crate::bwrap::BwrapConfig;
use std::path::{Path, PathBuf};

impl BwrapConfig {
    /// The toolchains under the orchestrator's `HOME` (and where their
    /// variables point), as [`BwrapConfig::with_toolchains_of`] finds them.
    pub fn with_default_toolchains(self) -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        match var("HOME") {
            Some(home) => self.with_toolchains_of(&home, &var),
            None => self,
        }
    }

    /// The toolchains under `home` that exist, `var` giving the person's
    /// variables (`CARGO_HOME`, `PYENV_ROOT`, `NVM_DIR`, `GOPATH`,
    /// `GOROOT`).
    pub fn with_toolchains_of(
        mut self,
        home: &Path,
        var: &dyn Fn(&str) -> Option<PathBuf>,
    ) -> Self {
        self.add_rust(home, var);
        // pyenv: the whole root (its shims run `libexec/pyenv`), and where
        // it is.
        let pyenv = var("PYENV_ROOT").unwrap_or_else(|| home.join(".pyenv"));
        if pyenv.is_dir() {
            self.toolchain_paths.push(pyenv.join("shims"));
            self.toolchain_paths.push(pyenv.join("bin"));
            self.toolchain_paths.push(pyenv.clone());
            self.set_env("PYENV_ROOT", &pyenv.to_string_lossy());
        }
        self.add_nvm(home, var);
        self.add_go(home, var);
        // Maven: the local repository only (settings.xml may hold
        // passwords), read-only where Maven looks for it.
        let maven = home.join(".m2/repository");
        if maven.is_dir() {
            self.home_binds.push((maven, ".m2/repository".into()));
        }
        // Gradle: its dependency cache, through the variable Gradle reads a
        // read-only cache from (gradle.properties may hold credentials).
        let gradle = home.join(".gradle/caches");
        if gradle.join("modules-2").is_dir() {
            self.toolchain_paths.push(gradle.clone());
            self.set_env("GRADLE_RO_DEP_CACHE", &gradle.to_string_lossy());
        }
        self
    }

    fn set_env(&mut self, name: &str, value: &str) {
        self.toolchain_env.push((name.to_owned(), value.to_owned()));
    }

    /// rustup's default toolchain first on `PATH` (its proxies in
    /// `~/.cargo/bin` would want to write under `~/.rustup`, which stays
    /// read-only); cargo's binaries; the registry and git checkouts that
    /// `cargo fetch` filled, read-only in a private `CARGO_HOME` (cargo
    /// writes its lock and cache tracker there; credentials never come).
    fn add_rust(&mut self, home: &Path, var: &dyn Fn(&str) -> Option<PathBuf>) {
        if let Some(bin) = default_rust_toolchain_bin(&home.join(".rustup")) {
            self.toolchain_paths.push(bin);
        }
        for relative in [".rustup/toolchains", ".rustup/settings.toml", ".local/bin"] {
            let path = home.join(relative);
            if path.exists() {
                self.toolchain_paths.push(path);
            }
        }
        let cargo_home = var("CARGO_HOME").unwrap_or_else(|| home.join(".cargo"));
        if cargo_home.join("bin").is_dir() {
            self.toolchain_paths.push(cargo_home.join("bin"));
        }
        let mut cargo_caches = false;
        for cache in ["registry", "git"] {
            let path = cargo_home.join(cache);
            if path.is_dir() {
                self.home_binds.push((path, format!(".cargo/{cache}")));
                cargo_caches = true;
            }
        }
        if cargo_caches {
            self.set_env("CARGO_HOME", &format!("{SANDBOX_HOME}/.cargo"));
        }
    }

    /// nvm: the Node versions it installed, the default one's `bin` on
    /// `PATH`.
    fn add_nvm(&mut self, home: &Path, var: &dyn Fn(&str) -> Option<PathBuf>) {
        let nvm = var("NVM_DIR").unwrap_or_else(|| home.join(".nvm"));
        let versions = nvm.join("versions/node");
        let Some(version) = default_node_version(&nvm) else {
            return;
        };
        self.toolchain_paths
            .push(versions.join(version).join("bin"));
        self.toolchain_paths.push(versions);
        self.set_env("NVM_DIR", &nvm.to_string_lossy());
    }

    /// Go: an SDK outside the system directories (`GOROOT`, `~/go` SDKs
    /// from `go install golang.org/dl/...`), the module cache read-only,
    /// `GOPATH/bin` on `PATH`.
    fn add_go(&mut self, home: &Path, var: &dyn Fn(&str) -> Option<PathBuf>) {
        if let Some(root) = var("GOROOT").filter(|r| r.join("bin/go").is_file())
            && !root.starts_with("/usr")
        {
            self.toolchain_paths.push(root.join("bin"));
            self.toolchain_paths.push(root.clone());
            self.set_env("GOROOT", &root.to_string_lossy());
        }
        let gopath = var("GOPATH").unwrap_or_else(|| home.join("go"));
        if gopath.join("bin").is_dir() {
            self.toolchain_paths.push(gopath.join("bin"));
        }
        let modules = var("GOMODCACHE").unwrap_or_else(|| gopath.join("pkg/mod"));
        if modules.is_dir() {
            self.toolchain_paths.push(modules.clone());
            self.set_env("GOMODCACHE", &modules.to_string_lossy());
        }
    }
}

/// `<rustup home>/toolchains/<default>/bin`, from rustup's settings (or the
/// only toolchain installed).
pub(crate) fn default_rust_toolchain_bin(rustup_home: &Path) -> Option<PathBuf> {
    let toolchains = rustup_home.join("toolchains");
    let settings = std::fs::read_to_string(rustup_home.join("settings.toml")).unwrap_or_default();
    let named = settings.lines().find_map(|line| {
        let value = line
            .trim()
            .strip_prefix("default_toolchain")?
            .trim()
            .strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_owned())
    });
    let name = match named {
        Some(name) => name,
        None => only_entry(&toolchains)?,
    };
    let bin = toolchains.join(name).join("bin");
    bin.is_dir().then_some(bin)
}

/// The one entry of `dir`, when it has exactly one.
fn only_entry(dir: &Path) -> Option<String> {
    let mut entries = std::fs::read_dir(dir).ok()?.flatten();
    let only = entries.next()?;
    if entries.next().is_some() {
        return None;
    }
    Some(only.file_name().to_string_lossy().into_owned())
}

/// The Node version nvm uses by default: its `alias/default` (a version
/// or a prefix of one, the newest matching), else the newest installed.
fn default_node_version(nvm: &Path) -> Option<String> {
    let mut installed: Vec<(semver::Version, String)> =
        std::fs::read_dir(nvm.join("versions/node"))
            .ok()?
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version = semver::Version::parse(name.strip_prefix('v')?).ok()?;
                entry.path().join("bin").is_dir().then_some((version, name))
            })
            .collect();
    installed.sort();
    let wanted = std::fs::read_to_string(nvm.join("alias/default")).unwrap_or_default();
    let wanted = wanted.trim().trim_start_matches('v');
    let matching = installed.iter().rev().find(|(version, _)| {
        let text = version.to_string();
        !wanted.is_empty() && (text == wanted || text.starts_with(&format!("{wanted}.")))
    });
    matching
        .or_else(|| installed.last())
        .map(|(_, name)| name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rust_toolchain_comes_from_rustups_settings_or_is_the_only_one() {
        let rustup = tempfile::tempdir().unwrap();
        for name in ["stable-x", "nightly-x"] {
            std::fs::create_dir_all(rustup.path().join("toolchains").join(name).join("bin"))
                .unwrap();
        }
        assert_eq!(
            default_rust_toolchain_bin(rustup.path()),
            None,
            "two toolchains, no setting"
        );
        std::fs::write(
            rustup.path().join("settings.toml"),
            "version = \"12\"\ndefault_toolchain = \"nightly-x\"\n",
        )
        .unwrap();
        assert_eq!(
            default_rust_toolchain_bin(rustup.path()),
            Some(rustup.path().join("toolchains/nightly-x/bin"))
        );
        std::fs::write(
            rustup.path().join("settings.toml"),
            "default_toolchain = \"gone\"\n",
        )
        .unwrap();
        assert_eq!(default_rust_toolchain_bin(rustup.path()), None);
    }

    #[test]
    fn nvms_default_is_its_alias_or_the_newest_version() {
        let nvm = tempfile::tempdir().unwrap();
        assert_eq!(default_node_version(nvm.path()), None);
        for version in [
            "v18.19.0",
            "v20.1.0",
            "v20.11.1",
            "v22.0.0",
            "vnot-a-version",
        ] {
            std::fs::create_dir_all(nvm.path().join("versions/node").join(version).join("bin"))
                .unwrap();
        }
        assert_eq!(default_node_version(nvm.path()).as_deref(), Some("v22.0.0"));
        std::fs::create_dir_all(nvm.path().join("alias")).unwrap();
        for (alias, version) in [
            ("20", "v20.11.1"),
            ("v18.19.0", "v18.19.0"),
            ("lts/*", "v22.0.0"),
            ("2", "v22.0.0"),
        ] {
            std::fs::write(nvm.path().join("alias/default"), alias).unwrap();
            assert_eq!(
                default_node_version(nvm.path()).as_deref(),
                Some(version),
                "{alias}"
            );
        }
    }
}
