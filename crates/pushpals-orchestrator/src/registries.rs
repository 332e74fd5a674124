//! Where a named package registry is, read from the configuration the
//! person uses on this machine (pip's index, npm's registry), so a setup
//! step inside the sandbox reaches the same place, without credentials.

use crate::setup_config::{Reach, Registry};
use std::process::Command;

/// The hosts a setup step may reach and the variables that point its
/// tools at them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAccess {
    /// Host patterns for the proxy.
    pub hosts: Vec<String>,
    /// Variables for the command (`PIP_INDEX_URL`, `npm_config_registry`).
    pub env: Vec<(String, String)>,
}

/// Resolves `reach` against this machine's configuration; a registry whose
/// tool is missing or says nothing is an error that says what to do.
pub fn resolve(reach: &[Reach]) -> Result<RegistryAccess, String> {
    let mut access = RegistryAccess::default();
    for entry in reach {
        match entry {
            Reach::Host(pattern) => access.hosts.push(pattern.clone()),
            Reach::Registry(Registry::Pypi) => pypi(&mut access)?,
            Reach::Registry(Registry::Npm) => npm(&mut access)?,
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

    fn which(program: &str) -> bool {
        Command::new(program).arg("--version").output().is_ok()
    }
}
