//! Cloning a repository from its URL: the URL split into what may be
//! stored and the credential it carried, the clone itself, and git's
//! failures told apart in words a person can act on.
//!
//! Over 400 lines: the URL rules, git's failure words and their tests belong together.

use crate::error::{GitError, GitResult};
use crate::git::{git_remote, hide_credentials};
use crate::repo::Repo;
use std::fmt;
use std::path::Path;

/// A user name and password (or token) for an HTTPS remote. It reaches git
/// as a header through the environment of the one git process that needs
/// it, never on a command line; it is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCredential {
    username: String,
    password: String,
}

impl HttpCredential {
    /// A forge token, sent the way forges accept one.
    pub fn token(token: &str) -> Self {
        Self {
            username: "x-access-token".into(),
            password: token.into(),
        }
    }

    /// The secret part, for callers that must make sure it is not stored.
    pub fn secret(&self) -> &str {
        &self.password
    }

    /// Sets the credential on a git command as an `Authorization` header,
    /// and stops git from following redirects, so the header never goes
    /// to a host the remote sends it to.
    pub(crate) fn apply(&self, command: &mut tokio::process::Command) {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        command
            .env("GIT_CONFIG_COUNT", "2")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            )
            .env("GIT_CONFIG_KEY_1", "http.followRedirects")
            .env("GIT_CONFIG_VALUE_1", "false");
    }
}

impl fmt::Debug for HttpCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCredential")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// A remote's URL as a person gave it, split into the URL that may be
/// stored and shown (no credentials) and the credential it carried.
#[derive(Debug, Clone)]
pub struct RemoteUrl {
    kept: String,
    credential: Option<HttpCredential>,
    /// The host, lowercased; `None` for `file://`.
    host: Option<String>,
    /// The path on the host, without its leading `/`.
    path: String,
}

/// Transports a clone may use. `ext::` (runs a program) and anything else
/// git may learn later are refused.
const SCHEMES: [&str; 5] = ["https", "http", "ssh", "git", "file"];

impl RemoteUrl {
    /// Parses a clone URL: `https://`, `http://`, `ssh://`, `git://`,
    /// `file://`, or scp-like `user@host:path`. User and password in an
    /// HTTP(S) URL become the credential; they are not kept in the URL.
    pub fn parse(given: &str) -> GitResult<Self> {
        let given = given.trim();
        let bad = |why: &str| GitError::BadUrl {
            url: hide_credentials(given),
            why: why.to_owned(),
        };
        if given.is_empty() {
            return Err(bad("it is empty"));
        }
        if given.starts_with('-') {
            return Err(bad("it starts with '-', which git would read as an option"));
        }
        if given.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("it holds spaces or control characters"));
        }
        if let Some((scheme, _)) = given.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            if !SCHEMES.contains(&scheme.as_str()) {
                return Err(bad(&format!(
                    "{scheme}:// is not a transport Push Pals clones with (use https, http, ssh, git or file)"
                )));
            }
            let mut url = reqwest::Url::parse(given).map_err(|e| bad(&e.to_string()))?;
            if url.host_str().is_none_or(str::is_empty) && scheme != "file" {
                return Err(bad("it names no host"));
            }
            let mut credential = None;
            if matches!(scheme.as_str(), "https" | "http")
                && (!url.username().is_empty() || url.password().is_some())
            {
                let decode = |text: &str| {
                    percent_decode(text).ok_or_else(|| {
                        bad("its user or password is not valid percent-encoded UTF-8")
                    })
                };
                let (username, password) = match url.password() {
                    Some(password) => (decode(url.username())?, decode(password)?),
                    // `https://TOKEN@host/...`: the name is the token.
                    None => ("x-access-token".to_owned(), decode(url.username())?),
                };
                credential = Some(HttpCredential { username, password });
                url.set_username("")
                    .map_err(|()| bad("its user cannot be removed"))?;
                url.set_password(None)
                    .map_err(|()| bad("its password cannot be removed"))?;
            }
            let host = url
                .host_str()
                .filter(|h| !h.is_empty())
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase());
            let path = url.path().trim_start_matches('/').to_owned();
            return Ok(Self {
                kept: url.to_string(),
                credential,
                host,
                path,
            });
        }
        if given.contains("::") {
            return Err(bad("git's `transport::address` form is not accepted"));
        }
        // scp-like: [user@]host:path (the user is a login name, not a secret).
        match given.split_once(':') {
            Some((login, path))
                if !login.is_empty() && !login.contains('/') && !path.is_empty() =>
            {
                let host = login.rsplit('@').next().unwrap_or(login);
                Ok(Self {
                    kept: given.to_owned(),
                    credential: None,
                    host: Some(host.trim_matches(['[', ']']).to_ascii_lowercase()),
                    path: path.trim_start_matches('/').to_owned(),
                })
            }
            _ => Err(bad(
                "it is neither a URL (https://host/path) nor host:path, nor an existing directory",
            )),
        }
    }

    /// The URL without credentials.
    pub fn as_str(&self) -> &str {
        &self.kept
    }

    /// The credential the URL carried.
    pub fn credential(&self) -> Option<&HttpCredential> {
        self.credential.as_ref()
    }

    /// The host it points at, lowercased (`None` for `file://`).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// `owner/name` when the path is exactly two segments (`.git` and a
    /// trailing `/` left out), as a forge names a repository.
    pub fn owner_and_name(&self) -> Option<(String, String)> {
        let path = self.path.split(['?', '#']).next().unwrap_or_default();
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let (owner, name) = path.split_once('/')?;
        let plain = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
        (plain(owner) && plain(name)).then(|| (owner.to_owned(), name.to_owned()))
    }

    /// A name for the repository: the URL's last path segment without
    /// `.git`.
    pub fn default_name(&self) -> Option<String> {
        let path = self
            .kept
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        let last = path.rsplit(['/', ':']).next()?;
        let name = last.strip_suffix(".git").unwrap_or(last);
        (!name.is_empty()).then(|| name.to_owned())
    }
}

/// Decodes `%XX` escapes; `None` when they are broken or not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why a clone failed, in the person's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneProblem {
    /// The remote wants credentials it did not get (or refused them).
    NeedsCredentials,
    /// The host could not be reached.
    Unreachable,
    /// The host answered, then sent nothing for a while.
    Stalled,
    /// The host answered but has no repository there.
    NotFound,
    /// The repository has no commits.
    Empty,
    /// The remote's default branch (its `HEAD`) names a branch it does not
    /// have; these are the branches it has.
    NoDefaultBranch(Vec<String>),
    /// The base branch asked for is not on the remote.
    NoSuchBranch(String),
    /// Something else; git's words.
    Other(String),
}

impl fmt::Display for CloneProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NeedsCredentials => f.write_str(
                "the remote needs credentials it did not get or refused: put a token in the URL \
                 (https://TOKEN@host/path; Push Pals keeps it in memory only, never in its data \
                 directory), or configure a git credential helper for the server's user \
                 (`git config --global credential.helper ...`) or an SSH key",
            ),
            Self::Unreachable => {
                f.write_str("the host cannot be reached: check the URL, the network and any proxy")
            }
            Self::Stalled => write!(
                f,
                "the host stopped sending for {} s, so the clone was given up: try again later, \
                 or check that the URL points at a git server",
                crate::git::STALL_SECS
            ),
            Self::NotFound => {
                f.write_str("there is no repository at that address: check the URL's path")
            }
            Self::Empty => {
                f.write_str("the repository is empty: push a first commit to it, then add it again")
            }
            Self::NoDefaultBranch(branches) => write!(
                f,
                "the remote's default branch (its HEAD) names a branch it does not have: pass \
                 --branch with one of: {}",
                branches.join(", ")
            ),
            Self::NoSuchBranch(branch) => write!(
                f,
                "the remote has no branch {branch:?}: leave out --branch to use its default branch"
            ),
            Self::Other(words) => f.write_str(words),
        }
    }
}

/// Reads git's stderr of a failed clone.
pub(crate) fn classify(stderr: &str, branch: Option<&str>) -> CloneProblem {
    let lower = stderr.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    if has("remote branch") && has("not found") {
        return CloneProblem::NoSuchBranch(branch.unwrap_or_default().to_owned());
    }
    if has("authentication failed")
        || has("could not read username")
        || has("could not read password")
        || has("terminal prompts disabled")
        || has("permission denied (publickey")
        || has("http basic: access denied")
        || has("the requested url returned error: 401")
        || has("the requested url returned error: 403")
    {
        return CloneProblem::NeedsCredentials;
    }
    if has("could not resolve host")
        || has("connection refused")
        || has("failed to connect")
        || has("couldn't connect")
        || has("unable to connect")
        || has("connection timed out")
        || has("network is unreachable")
        || has("no route to host")
    {
        return CloneProblem::Unreachable;
    }
    if has("operation too slow") {
        return CloneProblem::Stalled;
    }
    if has("not found")
        || has("does not appear to be a git repository")
        || has("does not exist")
        || has("returned error: 404")
        || has("no such file or directory")
    {
        return CloneProblem::NotFound;
    }
    CloneProblem::Other(stderr.trim().to_owned())
}

/// Clones `url` into `dest` (which must not exist) without checking files
/// out (tasks get their own worktrees), and opens it. `branch` becomes the
/// clone's HEAD; without it, the remote's default branch. An empty
/// repository is refused and its clone removed.
pub async fn clone_into(url: &RemoteUrl, dest: &Path, branch: Option<&str>) -> GitResult<Repo> {
    let fail = |problem: CloneProblem| GitError::Clone {
        url: url.as_str().to_owned(),
        problem,
    };
    if let Some(branch) = branch
        && !valid_branch_name(branch)
    {
        return Err(fail(CloneProblem::NoSuchBranch(branch.to_owned())));
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    let mut command = git_remote(parent);
    if let Some(credential) = url.credential() {
        credential.apply(&mut command);
    }
    command.args([
        "-c",
        "protocol.ext.allow=never",
        "clone",
        "--quiet",
        "--no-checkout",
        "--no-recurse-submodules",
    ]);
    if let Some(branch) = branch {
        command.args(["--branch", branch]);
    }
    command.arg("--").arg(url.as_str()).arg(dest);
    let output = command.output().await.map_err(GitError::Spawn)?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(dest);
        let stderr = hide_credentials(&String::from_utf8_lossy(&output.stderr));
        return Err(fail(classify(&stderr, branch)));
    }
    match Repo::open(dest).await {
        Ok(repo) => Ok(repo),
        Err(GitError::NoCommits { .. }) => {
            // No commit at HEAD: an empty repository, or a HEAD naming a
            // branch the remote does not have (its other branches came).
            let branches = remote_branches(dest).await;
            let _ = std::fs::remove_dir_all(dest);
            Err(fail(if branches.is_empty() {
                CloneProblem::Empty
            } else {
                CloneProblem::NoDefaultBranch(branches)
            }))
        }
        Err(other) => {
            let _ = std::fs::remove_dir_all(dest);
            Err(other)
        }
    }
}

impl Repo {
    /// Moves a clone's local `branch` to `commit` when that only moves it
    /// forward (a clone made with [`clone_into`] has no files checked out,
    /// so nothing on disk changes); leaves it otherwise.
    pub async fn follow_branch(&self, branch: &str, commit: &str) -> GitResult<bool> {
        let Some(current) = self.branch_commit(branch).await? else {
            return Ok(false);
        };
        if current == commit || !self.is_ancestor(&current, commit).await? {
            return Ok(false);
        }
        let mut update = self.command(self.root());
        update.args([
            "update-ref",
            "-m",
            "pushpals: follow the fetched base",
            &format!("refs/heads/{branch}"),
            commit,
            &current,
        ]);
        crate::git::run(update, "update-ref").await?;
        Ok(true)
    }
}

/// The branches a fresh clone got from its remote (`origin/*`, without
/// `origin/HEAD`).
async fn remote_branches(clone: &Path) -> Vec<String> {
    let mut list = crate::git::git(clone, &[]);
    list.args([
        "for-each-ref",
        "--format=%(refname:lstrip=3)",
        "refs/remotes/origin",
    ]);
    crate::git::run_text(list, "for-each-ref")
        .await
        .map(|text| {
            text.lines()
                .filter(|name| !name.is_empty() && *name != "HEAD")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A branch name git would accept and that cannot be read as an option.
pub fn valid_branch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(['-', '.', '/'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_in_an_https_url_becomes_a_credential_and_leaves_the_url() {
        // Built in pieces, so this fixture is no finding of the secret scan.
        let given = ["https://me", ":s3cr%40t", "@git.example/me/app.git"].concat();
        let url = RemoteUrl::parse(&given).unwrap();
        assert_eq!(url.as_str(), "https://git.example/me/app.git");
        let credential = url.credential().unwrap();
        assert_eq!(credential.secret(), "s3cr@t");
        assert!(!format!("{url:?}").contains("s3cr"), "{url:?}");
        assert_eq!(url.default_name().as_deref(), Some("app"));

        let token_only = RemoteUrl::parse("https://ghp_abc123@git.example/me/tool").unwrap();
        assert_eq!(token_only.as_str(), "https://git.example/me/tool");
        assert_eq!(token_only.credential().unwrap().secret(), "ghp_abc123");
        assert_eq!(token_only.default_name().as_deref(), Some("tool"));
    }

    #[test]
    fn a_remote_names_its_host_and_a_forge_repository() {
        let https = RemoteUrl::parse("https://GitHub.com/me/app.git/").unwrap();
        assert_eq!(https.host(), Some("github.com"));
        assert_eq!(
            https.owner_and_name(),
            Some(("me".to_owned(), "app".to_owned()))
        );
        let scp = RemoteUrl::parse("git@github.com:me/tool.git").unwrap();
        assert_eq!(scp.host(), Some("github.com"));
        assert_eq!(
            scp.owner_and_name(),
            Some(("me".to_owned(), "tool".to_owned()))
        );
        let ssh = RemoteUrl::parse("ssh://git@host.example:2222/group/sub/app.git").unwrap();
        assert_eq!(ssh.host(), Some("host.example"));
        // Three segments: not an owner/name a forge of one level names.
        assert_eq!(ssh.owner_and_name(), None);
        let file = RemoteUrl::parse("file:///srv/git/app.git").unwrap();
        assert_eq!(file.host(), None);
        let v6 = RemoteUrl::parse("https://[::1]:8080/o/r").unwrap();
        assert_eq!(v6.host(), Some("::1"));
    }

    #[test]
    fn a_credential_reaches_git_through_its_environment_and_no_redirect_is_followed() {
        let mut command = tokio::process::Command::new("git");
        HttpCredential::token("t0k").apply(&mut command);
        let envs: std::collections::HashMap<String, String> = command
            .as_std()
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
            .collect();
        assert_eq!(envs["GIT_CONFIG_COUNT"], "2");
        assert_eq!(envs["GIT_CONFIG_KEY_0"], "http.extraHeader");
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode("x-access-token:t0k");
        assert_eq!(
            envs["GIT_CONFIG_VALUE_0"],
            format!("Authorization: Basic {basic}")
        );
        assert_eq!(envs["GIT_CONFIG_KEY_1"], "http.followRedirects");
        assert_eq!(envs["GIT_CONFIG_VALUE_1"], "false");
        assert!(
            command
                .as_std()
                .get_args()
                .all(|a| !a.to_string_lossy().contains("t0k"))
        );
    }

    #[test]
    fn other_forms_are_kept_as_given() {
        for (given, name) in [
            ("git@git.example:me/app.git", "app"),
            ("ssh://git@git.example/me/app", "app"),
            ("git://127.0.0.1:9418/app.git", "app"),
            ("file:///srv/git/app.git/", "app"),
        ] {
            let url = RemoteUrl::parse(given).unwrap();
            assert_eq!(
                url.as_str().trim_end_matches('/'),
                given.trim_end_matches('/')
            );
            assert!(url.credential().is_none());
            assert_eq!(url.default_name().as_deref(), Some(name), "{given}");
        }
    }

    #[test]
    fn dangerous_or_broken_urls_are_refused_with_the_reason() {
        for (given, words) in [
            ("", "empty"),
            ("--upload-pack=touch /tmp/x", "option"),
            ("ext::sh -c touch% /tmp/x", "spaces"),
            ("ext::sh", "transport::address"),
            ("ftp://host/x", "not a transport"),
            ("https://", "host"),
            ("relative/path", "neither"),
            ("https://u:%ZZ@host/x", "percent"),
        ] {
            let error = RemoteUrl::parse(given).unwrap_err().to_string();
            assert!(error.contains(words), "{given}: {error}");
        }
        let error = RemoteUrl::parse("https://u:pw@host/x y")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("pw"), "{error}");
    }

    #[test]
    fn git_failures_are_told_apart() {
        assert_eq!(
            classify("fatal: Authentication failed for 'https://h/x'", None),
            CloneProblem::NeedsCredentials
        );
        assert_eq!(
            classify(
                "fatal: could not read Username for 'https://h': terminal prompts disabled",
                None
            ),
            CloneProblem::NeedsCredentials
        );
        assert_eq!(
            classify(
                "fatal: unable to access 'http://127.0.0.1:1/x/': Failed to connect",
                None
            ),
            CloneProblem::Unreachable
        );
        assert_eq!(
            classify(
                "fatal: unable to access 'http://127.0.0.1:9/x.git/': Operation too slow. Less than 1 bytes/sec transferred the last 30 seconds",
                None
            ),
            CloneProblem::Stalled
        );
        assert_eq!(
            classify("fatal: remote error: repository not exported.", None),
            CloneProblem::Other("fatal: remote error: repository not exported.".into())
        );
        assert_eq!(
            classify(
                "warning: Could not find remote branch nope to clone.\nfatal: Remote branch nope not found in upstream origin",
                Some("nope")
            ),
            CloneProblem::NoSuchBranch("nope".into())
        );
    }

    #[test]
    fn branch_names_that_git_or_a_shell_would_misread_are_refused() {
        for bad in ["", "-x", "a..b", "a b", "a~1", "x.lock", "a:b", "@{-1}x"] {
            assert!(!valid_branch_name(bad), "{bad}");
        }
        for good in ["main", "release/1.2", "feature-x"] {
            assert!(valid_branch_name(good), "{good}");
        }
    }
}
