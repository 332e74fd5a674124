//! Where one repository's task branches and pull requests go: its push
//! remote and base branch, the credential its remote's host may get, and
//! its repository on the forge. The server's `[delivery]` and `[forge]`,
//! narrowed per repository by `[repos.NAME]`; a token goes only to the
//! host it is for.

use super::Delivery;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::repositories::ServedRepo;
use crate::settings::Settings;
use pushpals_workspace::{HttpCredential, RemoteUrl};

/// A repository's push remote and the branch its task branches go onto.
pub(crate) struct DeliveryTarget {
    /// The remote's name.
    pub remote: String,
    /// The base branch.
    pub base: String,
    /// The remote's URL, parsed; `None` for a local path.
    pub url: Option<RemoteUrl>,
}

impl Delivery {
    /// The remote and base branch pushes go to, when the repository has
    /// the remote its settings name.
    pub(crate) async fn target(
        &self,
        served: &ServedRepo,
    ) -> OrchestratorResult<Option<DeliveryTarget>> {
        let remote = remote_name(&self.settings.get(), served.name()).to_owned();
        let Some(url) = served.repo.remote_url(&remote).await? else {
            return Ok(None);
        };
        Ok(self
            .base_branch_of(served)
            .await?
            .map(|base| DeliveryTarget {
                remote,
                base,
                url: RemoteUrl::parse(&url).ok(),
            }))
    }

    /// What the orchestrator's git talks to a repository's remote with.
    pub(crate) fn remote_credential(
        &self,
        served: &ServedRepo,
        target: &DeliveryTarget,
    ) -> OrchestratorResult<Option<HttpCredential>> {
        let clone = served.credential.as_ref().map(|credential| {
            let host = served
                .record
                .origin
                .as_deref()
                .and_then(|origin| RemoteUrl::parse(origin).ok())
                .and_then(|origin| origin.host().map(str::to_owned));
            (credential, host)
        });
        credential_for(
            &self.settings.get(),
            served.name(),
            clone,
            target.url.as_ref(),
            self.repos.registered(),
        )
    }

    /// The base branch of a repository, which merges and pushes go to:
    /// the one it was registered with, else `[delivery] base_branch`, else
    /// its checkout's current branch.
    pub(crate) async fn base_branch_of(
        &self,
        served: &ServedRepo,
    ) -> OrchestratorResult<Option<String>> {
        if let Some(branch) = &served.record.branch {
            return Ok(Some(branch.clone()));
        }
        Ok(match &self.settings.get().delivery.base_branch {
            Some(base) => Some(base.clone()),
            None => served.repo.current_branch().await?,
        })
    }

    /// The repository's `(owner, name)` on `[forge]`, when it has one.
    pub(crate) async fn forge_repository(
        &self,
        served: &ServedRepo,
    ) -> OrchestratorResult<Option<(String, String)>> {
        let settings = self.settings.get();
        let remote = remote_name(&settings, served.name());
        let url = served
            .repo
            .remote_url(remote)
            .await?
            .and_then(|url| RemoteUrl::parse(&url).ok());
        Ok(forge_repository(
            &settings,
            served.name(),
            url.as_ref(),
            self.repos.registered(),
        ))
    }
}

/// The remote a repository's task branches are pushed to.
pub(crate) fn remote_name<'a>(settings: &'a Settings, repo: &str) -> &'a str {
    settings
        .repos
        .get(repo)
        .and_then(|r| r.remote.as_deref())
        .unwrap_or(&settings.delivery.remote)
}

/// The host a forge's web pages and git are on, from its API's URL:
/// `api.github.com` is `github.com`; GitHub Enterprise serves its API on
/// its own host.
pub(crate) fn forge_host(api_url: &str) -> Option<String> {
    let host = reqwest::Url::parse(api_url)
        .ok()?
        .host_str()?
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    Some(
        host.strip_prefix("api.")
            .map_or(host.clone(), str::to_owned),
    )
}

/// The host `[delivery] token_env`'s token is for: `token_host`, else
/// the forge's. `None`: not said.
fn token_host(settings: &Settings) -> Option<String> {
    settings
        .delivery
        .token_host
        .as_ref()
        .map(|h| h.to_ascii_lowercase())
        .or_else(|| settings.forge.as_ref().and_then(|f| forge_host(&f.api_url)))
}

/// The token in environment variable `name`; the error says which
/// setting named it.
fn token_in(name: &str, named_by: &str) -> OrchestratorResult<String> {
    match std::env::var(name) {
        Ok(token) if !token.trim().is_empty() => Ok(token),
        _ => Err(OrchestratorError::DeliveryBlocked(format!(
            "the environment variable {name} (named by {named_by}) holds no token; set it where the server runs"
        ))),
    }
}

/// The credential sent to a repository's remote: the one its clone URL
/// carried (to that URL's host only), else its `[repos.NAME] token_env`,
/// else `[delivery] token_env` when the remote is on that token's host
/// (or, when no host is said, when this is the only repository). `None`:
/// the server user's own git credentials apply.
pub(crate) fn credential_for(
    settings: &Settings,
    repo: &str,
    clone: Option<(&HttpCredential, Option<String>)>,
    remote: Option<&RemoteUrl>,
    registered: usize,
) -> OrchestratorResult<Option<HttpCredential>> {
    let remote_host = remote.and_then(RemoteUrl::host);
    if let Some((credential, host)) = clone
        && host.is_some()
        && host.as_deref() == remote_host
    {
        return Ok(Some(credential.clone()));
    }
    if let Some(name) = settings.repos.get(repo).and_then(|r| r.token_env.as_ref()) {
        let token = token_in(name, &format!("[repos.{repo}] token_env"))?;
        return Ok(Some(HttpCredential::token(&token)));
    }
    let Some(name) = &settings.delivery.token_env else {
        return Ok(None);
    };
    let applies = match token_host(settings) {
        Some(host) => remote_host == Some(host.as_str()),
        None => registered <= 1,
    };
    if !applies {
        return Ok(None);
    }
    let token = token_in(name, "[delivery] token_env")?;
    Ok(Some(HttpCredential::token(&token)))
}

/// A repository's `(owner, name)` on `[forge]`: its `[repos.NAME]
/// forge_repo`, else its remote's path when the remote is on the forge's
/// host, else `[forge] owner`/`repo` when this is the only repository.
pub(crate) fn forge_repository(
    settings: &Settings,
    repo: &str,
    remote: Option<&RemoteUrl>,
    registered: usize,
) -> Option<(String, String)> {
    let forge = settings.forge.as_ref()?;
    if let Some(named) = settings
        .repos
        .get(repo)
        .and_then(|r| r.forge_repo.as_deref())
    {
        return crate::repo_settings::split_forge_repo(named);
    }
    if let Some(url) = remote
        && url.host().is_some()
        && url.host().map(str::to_owned) == forge_host(&forge.api_url)
        && let Some(found) = url.owner_and_name()
    {
        return Some(found);
    }
    match (&forge.owner, &forge.repo) {
        (Some(owner), Some(name)) if registered <= 1 => Some((owner.clone(), name.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Settings {
        Settings::from_toml(text).unwrap()
    }

    fn url(text: &str) -> RemoteUrl {
        RemoteUrl::parse(text).unwrap()
    }

    #[test]
    fn the_forge_host_is_where_its_git_is() {
        assert_eq!(
            forge_host("https://api.github.com").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            forge_host("https://ghe.example/api/v3").as_deref(),
            Some("ghe.example")
        );
        assert_eq!(forge_host("not a url"), None);
    }

    #[test]
    fn the_push_token_goes_only_to_its_host() {
        // CARGO_PKG_NAME is set for every test run: a token that is there.
        let with_host =
            settings("[delivery]\ntoken_env = \"CARGO_PKG_NAME\"\ntoken_host = \"github.com\"\n");
        let github = url("https://github.com/me/app.git");
        let elsewhere = url("https://git.example/me/app.git");
        let sent = credential_for(&with_host, "app", None, Some(&github), 3).unwrap();
        assert_eq!(sent.unwrap().secret(), env!("CARGO_PKG_NAME"));
        assert!(
            credential_for(&with_host, "app", None, Some(&elsewhere), 3)
                .unwrap()
                .is_none()
        );
        assert!(
            credential_for(&with_host, "app", None, None, 1)
                .unwrap()
                .is_none(),
            "a local path is no host the token is for"
        );

        // No host said: the one repository's remote, as a one-repository
        // server always did; with several, none of them.
        let no_host = settings("[delivery]\ntoken_env = \"CARGO_PKG_NAME\"\n");
        assert!(
            credential_for(&no_host, "app", None, Some(&elsewhere), 1)
                .unwrap()
                .is_some()
        );
        assert!(
            credential_for(&no_host, "app", None, Some(&elsewhere), 2)
                .unwrap()
                .is_none()
        );

        // The forge's host is the token's host when none is said.
        let forge =
            settings("[delivery]\ntoken_env = \"CARGO_PKG_NAME\"\n[forge]\nkind = \"github\"\n");
        assert!(
            credential_for(&forge, "app", None, Some(&github), 2)
                .unwrap()
                .is_some()
        );
        assert!(
            credential_for(&forge, "app", None, Some(&elsewhere), 2)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_repository_names_its_own_token_and_an_empty_one_is_an_error() {
        let own = settings(
            "[delivery]\ntoken_env = \"PUSHPALS_TEST_NO_SUCH_TOKEN\"\ntoken_host = \"github.com\"\n\
             [repos.app]\ntoken_env = \"CARGO_PKG_NAME\"\n[repos.tool]\ntoken_env = \"PUSHPALS_TEST_NO_SUCH_TOKEN_2\"\n",
        );
        let elsewhere = url("https://git.example/me/app.git");
        assert!(
            credential_for(&own, "app", None, Some(&elsewhere), 2)
                .unwrap()
                .is_some()
        );
        let err = credential_for(&own, "tool", None, Some(&elsewhere), 2).unwrap_err();
        assert!(err.to_string().contains("[repos.tool] token_env"), "{err}");
        // The server-wide token, empty, for its own host: the error names it.
        let github = url("https://github.com/me/other.git");
        let err = credential_for(&own, "other", None, Some(&github), 2).unwrap_err();
        assert!(
            err.to_string().contains("PUSHPALS_TEST_NO_SUCH_TOKEN"),
            "{err}"
        );
    }

    #[test]
    fn a_clone_urls_credential_goes_to_that_host_only() {
        let none = settings("");
        let credential = HttpCredential::token("from-the-url");
        let own = url("https://git.example/me/app.git");
        let moved = url("https://other.example/me/app.git");
        let sent = credential_for(
            &none,
            "app",
            Some((&credential, Some("git.example".into()))),
            Some(&own),
            2,
        )
        .unwrap();
        assert_eq!(sent.unwrap().secret(), "from-the-url");
        assert!(
            credential_for(
                &none,
                "app",
                Some((&credential, Some("git.example".into()))),
                Some(&moved),
                2
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn each_repository_opens_pull_requests_on_its_own_forge_repository() {
        let global = settings(
            "[forge]\nkind = \"github\"\nowner = \"acme\"\nrepo = \"app\"\n\
             [repos.pinned]\nforge_repo = \"acme/pinned-elsewhere\"\n",
        );
        let tool = url("git@github.com:acme/tool.git");
        assert_eq!(
            forge_repository(&global, "tool", Some(&tool), 3),
            Some(("acme".into(), "tool".into()))
        );
        assert_eq!(
            forge_repository(&global, "pinned", Some(&tool), 3),
            Some(("acme".into(), "pinned-elsewhere".into()))
        );
        // Not on the forge's host: the server-wide owner/repo is for a
        // server of one repository only.
        let local = url("https://git.example/acme/local.git");
        assert_eq!(forge_repository(&global, "local", Some(&local), 3), None);
        assert_eq!(
            forge_repository(&global, "local", Some(&local), 1),
            Some(("acme".into(), "app".into()))
        );
        assert_eq!(
            forge_repository(&global, "local", None, 1).map(|r| r.1),
            Some("app".into())
        );
        assert_eq!(
            forge_repository(&settings(""), "tool", Some(&tool), 1),
            None
        );
    }
}
