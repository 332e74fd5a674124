//! `[repos.NAME]` in config.toml: where one repository's task branches and
//! pull requests go, when that differs from the server's `[delivery]` and
//! `[forge]`, and how many of its tasks run at once. Kept in the server's config, not in the repository's
//! `pushpals.toml`: a repository must not choose where a token is sent.

use serde::Deserialize;

/// `[repos.NAME]`: one registered repository's delivery settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSettings {
    /// The git remote its task branches are pushed to (default:
    /// `[delivery] remote`).
    pub remote: Option<String>,
    /// The environment variable holding the token for its remote (HTTPS),
    /// sent to that remote whatever its host.
    pub token_env: Option<String>,
    /// Its repository on `[forge]`, as `owner/name` (default: read from
    /// its remote's URL when that is on the forge's host).
    pub forge_repo: Option<String>,
    /// The most of its tasks that run at once, here or on worker hosts
    /// (within `max_parallel`).
    pub max_parallel: Option<usize>,
}

impl RepoSettings {
    /// Checks the values; the error names the section and the key.
    pub(crate) fn validate(&self, name: &str) -> Result<(), String> {
        if let Some(remote) = &self.remote
            && !valid_remote_name(remote)
        {
            return Err(format!(
                "[repos.{name}] remote = {remote:?} is not a git remote name (letters, digits, '-', '_', '.'; not starting with '-')"
            ));
        }
        if let Some(forge_repo) = &self.forge_repo
            && split_forge_repo(forge_repo).is_none()
        {
            return Err(format!(
                "[repos.{name}] forge_repo = {forge_repo:?} must be owner/name, like \"acme/widgets\""
            ));
        }
        if self.max_parallel == Some(0) {
            return Err(format!(
                "[repos.{name}] max_parallel = 0 would never run its tasks: give 1 or more, or leave it out"
            ));
        }
        if self.token_env.as_deref().is_some_and(str::is_empty) {
            return Err(format!(
                "[repos.{name}] token_env is empty: name the environment variable holding the token"
            ));
        }
        Ok(())
    }
}

/// `owner/name` split in two, when both parts are plain names.
pub(crate) fn split_forge_repo(text: &str) -> Option<(String, String)> {
    let (owner, name) = text.split_once('/')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (plain(owner) && plain(name)).then(|| (owner.to_owned(), name.to_owned()))
}

/// A name git accepts for a remote and no shell or option parser misreads.
pub(crate) fn valid_remote_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named_with_their_section() {
        let bad_remote = RepoSettings {
            remote: Some("--upload-pack=x".into()),
            ..Default::default()
        };
        let err = bad_remote.validate("app").unwrap_err();
        assert!(err.contains("[repos.app] remote"), "{err}");
        let bad_forge = RepoSettings {
            forge_repo: Some("acme/widgets/extra".into()),
            ..Default::default()
        };
        let err = bad_forge.validate("app").unwrap_err();
        assert!(err.contains("owner/name"), "{err}");
        let empty_token = RepoSettings {
            token_env: Some(String::new()),
            ..Default::default()
        };
        assert!(empty_token.validate("app").is_err());
        let never = RepoSettings {
            max_parallel: Some(0),
            ..Default::default()
        };
        let err = never.validate("app").unwrap_err();
        assert!(err.contains("[repos.app] max_parallel"), "{err}");
        let good = RepoSettings {
            remote: Some("upstream".into()),
            token_env: Some("APP_TOKEN".into()),
            forge_repo: Some("acme/app.js".into()),
            max_parallel: Some(2),
        };
        assert_eq!(good.validate("app"), Ok(()));
        assert_eq!(
            split_forge_repo("acme/app.js"),
            Some(("acme".into(), "app.js".into()))
        );
        assert_eq!(split_forge_repo("../x"), None);
    }
}
