//! Where a named package registry is, read from the configuration the
//! person uses on this machine (pip's index, npm's registry, cargo's
//! registries and source replacement), so a setup step inside the sandbox
//! reaches the same place, without credentials.

use crate::setup_config::{Reach, Registry};
use std::path::Path;
use std::process::Command;

/// The hosts a setup step may reach and the variables that point its
/// tools at them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAccess {
    /// Host patterns for the proxy.
    pub hosts: Vec<String>,
    /// Variables for the command (`PIP_INDEX_URL`, `npm_config_registry`).
    pub env: Vec<(String, String)>,
    /// For `cargo`: the `config.toml` of the setup's own cargo home (the
    /// person's source replacement and registries, without credentials;
    /// empty when they have none).
    pub cargo_config: Option<String>,
}

/// Where, under the tree, a setup that reaches cargo's registries keeps its
/// own cargo home (downloads land there and reach every task with the
/// cache; the host's cargo home is never written).
pub const CARGO_HOME_IN_TREE: &str = ".pushpals/cargo-home";

/// Resolves `reach` against this machine's configuration; a registry whose
/// tool is missing or says nothing is an error that says what to do.
pub fn resolve(reach: &[Reach]) -> Result<RegistryAccess, String> {
    let mut access = RegistryAccess::default();
    for entry in reach {
        match entry {
            Reach::Host(pattern) => access.hosts.push(pattern.clone()),
            Reach::Registry(Registry::Pypi) => pypi(&mut access)?,
            Reach::Registry(Registry::Npm) => npm(&mut access)?,
            Reach::Registry(Registry::Cargo) => {
                let home = std::env::var_os("CARGO_HOME")
                    .filter(|v| !v.is_empty())
                    .map(std::path::PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo"))
                    })
                    .ok_or("network = [\"cargo\"]: neither CARGO_HOME nor HOME is set")?;
                cargo(&home, &mut access)?;
            }
        }
    }
    access.hosts.sort();
    access.hosts.dedup();
    Ok(access)
}

/// pip's index: `PIP_INDEX_URL`, pip's configuration, or pip's own default
/// (with the host its files come from); and the authorities it trusts.
fn pypi(access: &mut RegistryAccess) -> Result<(), String> {
    let configured = std::env::var("PIP_INDEX_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| pip_config_value("index-url"));
    let index = match configured {
        Some(url) => url,
        None => {
            let defaults = tool_output(
                "python3",
                &[
                    "-c",
                    "from pip._internal.models.index import PyPI; print(PyPI.simple_url); print(PyPI.file_storage_domain)",
                ],
            )
            .map_err(|e| format!("network = [\"pypi\"] needs pip on this machine to know where the index is: {e}"))?;
            let mut lines = defaults.lines();
            let index = lines.next().unwrap_or_default().trim().to_owned();
            if let Some(files) = lines.next().map(str::trim).filter(|h| !h.is_empty()) {
                access.hosts.push(files.to_owned());
            }
            index
        }
    };
    let (public, host) = without_credentials(&index, "pip's index URL")?;
    access.hosts.push(host);
    access.env.push(("PIP_INDEX_URL".into(), public));
    let extra = std::env::var("PIP_EXTRA_INDEX_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| pip_config_value("extra-index-url"));
    if let Some(extra) = extra {
        let mut urls = Vec::new();
        for url in extra.split_whitespace() {
            let (public, host) = without_credentials(url, "pip's extra index URL")?;
            access.hosts.push(host);
            urls.push(public);
        }
        access
            .env
            .push(("PIP_EXTRA_INDEX_URL".into(), urls.join(" ")));
    }
    // The certificate authorities the person's pip trusts (a company's
    // own, in front of the index), when they named them.
    let cert = std::env::var("PIP_CERT")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| pip_config_value("cert"));
    if let Some(cert) = cert {
        access.env.push(("PIP_CERT".into(), cert));
    }
    Ok(())
}

/// A value from `pip config list` (any scope), e.g. `index-url`.
fn pip_config_value(name: &str) -> Option<String> {
    let listed = tool_output("python3", &["-m", "pip", "config", "list"]).ok()?;
    listed.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        let key = key.rsplit('.').next()?;
        (key == name).then(|| value.trim().trim_matches('\'').trim_matches('"').to_owned())
    })
}

/// npm's registry, as `npm config get registry` says (its default when the
/// person set none).
fn npm(access: &mut RegistryAccess) -> Result<(), String> {
    let registry = tool_output("npm", &["config", "get", "registry"]).map_err(|e| {
        format!("network = [\"npm\"] needs npm on this machine to know where its registry is: {e}")
    })?;
    let (public, host) = without_credentials(registry.trim(), "npm's registry")?;
    access.hosts.push(host);
    access.env.push(("npm_config_registry".into(), public));
    // The certificate authorities npm trusts, when the person named them.
    if let Ok(cafile) = tool_output("npm", &["config", "get", "cafile"]) {
        let cafile = cafile.trim();
        if !cafile.is_empty() && cafile != "null" && cafile != "undefined" {
            access
                .env
                .push(("npm_config_cafile".into(), cafile.to_owned()));
        }
    }
    Ok(())
}

/// cargo's registries as the person's cargo home knows them: the hosts of
/// every registry its index cache holds (with the hosts their crates are
/// downloaded from), and the sources and registries its `config.toml`
/// names, which are also carried into the setup's own configuration.
fn cargo(home: &Path, access: &mut RegistryAccess) -> Result<(), String> {
    let before = access.hosts.len();
    let index = home.join("registry/index");
    for entry in std::fs::read_dir(&index).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // cargo names each index after its host and a hash of its URL.
        if let Some((host, hash)) = name.rsplit_once('-')
            && hash.len() == 16
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && !host.is_empty()
        {
            access.hosts.push(host.to_owned());
        }
        let Ok(text) = std::fs::read_to_string(entry.path().join("config.json")) else {
            continue;
        };
        let config: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        for key in ["dl", "api"] {
            if let Some(url) = config[key].as_str()
                && let Ok((_, host)) = without_credentials(url, "cargo's registry")
            {
                access.hosts.push(host);
            }
        }
    }
    let (config, hosts) = cargo_config(home)?;
    access.hosts.extend(hosts);
    if access.hosts.len() == before {
        return Err(format!(
            "network = [\"cargo\"]: cargo on this machine ({}) has not reached a registry yet, so its hosts are unknown; run `cargo fetch` in any project once, or name the hosts in network",
            home.display()
        ));
    }
    access.cargo_config = Some(config);
    Ok(())
}

/// From the cargo home's `config.toml`: its `[source]` and `[registries]`
/// tables with only the keys that say where (no tokens, no credential
/// providers), as TOML, and the hosts they name.
fn cargo_config(home: &Path) -> Result<(String, Vec<String>), String> {
    let path = ["config.toml", "config"]
        .iter()
        .map(|name| home.join(name))
        .find(|path| path.is_file());
    let Some(path) = path else {
        return Ok((String::new(), Vec::new()));
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
    let mut kept = toml::Table::new();
    let mut hosts = Vec::new();
    for (section, keys) in [
        (
            "source",
            &["registry", "replace-with", "git", "branch", "tag", "rev"][..],
        ),
        ("registries", &["index", "protocol"][..]),
    ] {
        let Some(entries) = table.get(section).and_then(toml::Value::as_table) else {
            continue;
        };
        let mut out = toml::Table::new();
        for (name, entry) in entries {
            let Some(entry) = entry.as_table() else {
                continue;
            };
            let mut kept_entry = toml::Table::new();
            for key in keys {
                let Some(value) = entry.get(*key).and_then(toml::Value::as_str) else {
                    continue;
                };
                let value = if matches!(*key, "registry" | "index" | "git") {
                    let url = value
                        .trim_start_matches("sparse+")
                        .trim_start_matches("registry+")
                        .trim_start_matches("git+");
                    let (public, host) = without_credentials(url, "a cargo registry")?;
                    hosts.push(host);
                    value.replacen(url, &public, 1)
                } else {
                    value.to_owned()
                };
                kept_entry.insert((*key).to_owned(), toml::Value::String(value));
            }
            if !kept_entry.is_empty() {
                out.insert(name.clone(), toml::Value::Table(kept_entry));
            }
        }
        if !out.is_empty() {
            kept.insert(section.to_owned(), toml::Value::Table(out));
        }
    }
    let config = if kept.is_empty() {
        String::new()
    } else {
        toml::to_string(&kept).map_err(|e| format!("cannot write cargo's configuration: {e}"))?
    };
    Ok((config, hosts))
}

/// A URL with any user name and password taken out, and its host.
fn without_credentials(url: &str, what: &str) -> Result<(String, String), String> {
    let mut parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("{what} `{}` is not a URL: {e}", visible_url(url)))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{what} `{}` names no host", visible_url(url)))?
        .to_owned();
    // Both calls only fail for URLs that cannot have credentials.
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), host))
}

/// A URL for a message, with anything before its last `@` (where a user
/// name and password would be) hidden.
fn visible_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        (_, Some(at)) => format!("…{}", &url[at..]),
        _ => url.to_owned(),
    }
}

/// What a program of this machine prints, or why it could not run.
fn tool_output(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_a_registry_url() {
        let (public, host) =
            without_credentials("https://me:s3cret@pkgs.example.com/simple/", "x").unwrap();
        assert_eq!(public, "https://pkgs.example.com/simple/");
        assert_eq!(host, "pkgs.example.com");
        let err = without_credentials("me:s3cret@nowhere", "pip's index URL").unwrap_err();
        assert!(err.starts_with("pip's index URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = without_credentials("https://a:b@/x", "y").unwrap_err();
        assert!(!err.contains("a:b"), "{err}");
    }

    #[test]
    fn host_patterns_pass_through_and_npms_registry_comes_from_npm() {
        let access = resolve(&[Reach::Host("*.example.com".into())]).unwrap();
        assert_eq!(access.hosts, ["*.example.com"]);
        assert!(access.env.is_empty());
        if which("npm") {
            let access = resolve(&[Reach::Registry(Registry::Npm)]).unwrap();
            assert_eq!(access.hosts.len(), 1);
            assert_eq!(access.env[0].0, "npm_config_registry");
            assert!(access.env[0].1.contains(&access.hosts[0]));
        }
    }

    #[test]
    fn cargos_hosts_come_from_its_index_cache_and_its_config_without_credentials() {
        let home = tempfile::tempdir().unwrap();
        let index = home
            .path()
            .join("registry/index/pkgs.example.com-0123456789abcdef");
        std::fs::create_dir_all(&index).unwrap();
        std::fs::write(
            index.join("config.json"),
            r#"{"dl": "https://dl.example.com/api/v1/crates", "api": "https://pkgs.example.com"}"#,
        )
        .unwrap();
        // Not an index of cargo's naming: passed over.
        std::fs::create_dir_all(home.path().join("registry/index/.package-cache")).unwrap();
        std::fs::write(
            home.path().join("config.toml"),
            "[source.crates-io]\nreplace-with = \"mirror\"\n\
             [source.mirror]\nregistry = \"sparse+https://me:tok3n@mirror.example.com/index/\"\n\
             [registries.corp]\nindex = \"https://corp.example.com/git/index\"\ntoken = \"s3cret\"\n\
             credential-provider = \"cargo:token\"\n\
             [build]\nrustc-wrapper = \"/tmp/evil\"\n",
        )
        .unwrap();
        let mut access = RegistryAccess::default();
        cargo(home.path(), &mut access).unwrap();
        access.hosts.sort();
        access.hosts.dedup();
        assert_eq!(
            access.hosts,
            [
                "corp.example.com",
                "dl.example.com",
                "mirror.example.com",
                "pkgs.example.com"
            ]
        );
        let config = access.cargo_config.unwrap();
        for kept in [
            "replace-with = \"mirror\"",
            "sparse+https://mirror.example.com/index/",
        ] {
            assert!(config.contains(kept), "{kept} not in {config}");
        }
        for dropped in [
            "tok3n",
            "s3cret",
            "credential-provider",
            "rustc-wrapper",
            "evil",
        ] {
            assert!(!config.contains(dropped), "{dropped} in {config}");
        }
    }

    #[test]
    fn a_cargo_that_never_reached_a_registry_is_an_error_that_says_what_to_do() {
        let home = tempfile::tempdir().unwrap();
        let err = cargo(home.path(), &mut RegistryAccess::default()).unwrap_err();
        assert!(err.contains("cargo fetch"), "{err}");
        std::fs::write(home.path().join("config.toml"), "[source.x\n").unwrap();
        let err = cargo(home.path(), &mut RegistryAccess::default()).unwrap_err();
        assert!(err.contains("not valid TOML"), "{err}");
    }

    fn which(program: &str) -> bool {
        Command::new(program).arg("--version").output().is_ok()
    }
}
