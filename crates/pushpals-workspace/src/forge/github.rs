//! GitHub's REST API for pull requests.

use super::{Forge, ForgeError, ForgeFuture, OpenedPullRequest, PullRequest};
use serde_json::{Value, json};
use std::time::Duration;

/// A GitHub repository reached through the REST API with a token.
#[derive(Clone)]
pub struct GitHub {
    http: reqwest::Client,
    api_url: String,
    owner: String,
    repo: String,
    token: String,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("GitHub")
            .field("api_url", &self.api_url)
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .finish()
    }
}

impl GitHub {
    /// A client for `owner/repo` at `api_url` (GitHub's public API, or an
    /// Enterprise server's).
    pub fn new(api_url: &str, owner: &str, repo: &str, token: String) -> Result<Self, ForgeError> {
        // TLS through rustls with the ring provider; installing it twice
        // is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("pushpals/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ForgeError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            token,
        })
    }

    async fn open(&self, request: &PullRequest) -> Result<OpenedPullRequest, ForgeError> {
        let url = format!("{}/repos/{}/{}/pulls", self.api_url, self.owner, self.repo);
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .json(&json!({
                "title": request.title,
                "body": request.body,
                "head": request.head,
                "base": request.base,
                "draft": request.draft,
            }))
            .send()
            .await
            .map_err(|e| ForgeError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = describe(&body);
        match status.as_u16() {
            200 | 201 => {
                let url = body["html_url"].as_str().unwrap_or_default().to_owned();
                let number = body["number"].as_u64().unwrap_or_default();
                if url.is_empty() {
                    return Err(ForgeError::Unavailable("the answer has no html_url".into()));
                }
                Ok(OpenedPullRequest { url, number })
            }
            401 | 403 => Err(ForgeError::Unauthorized(message)),
            422 => Err(ForgeError::Rejected(message)),
            code => Err(ForgeError::Unavailable(format!("HTTP {code}: {message}"))),
        }
    }
}

/// GitHub's error message and its detailed errors, in one line.
fn describe(body: &Value) -> String {
    let mut message = body["message"].as_str().unwrap_or("no message").to_owned();
    let details: Vec<&str> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect();
    if !details.is_empty() {
        message.push_str(": ");
        message.push_str(&details.join("; "));
    }
    message
}

impl Forge for GitHub {
    fn name(&self) -> &'static str {
        "github"
    }

    fn open_pull_request<'a>(
        &'a self,
        request: &'a PullRequest,
    ) -> ForgeFuture<'a, OpenedPullRequest> {
        Box::pin(self.open(request))
    }
}
