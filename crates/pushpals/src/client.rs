//! Talking to the server: URL, token, and errors a person can act on.

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::path::Path;

/// An authenticated client of one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// Finds the token (`PUSHPALS_TOKEN`, else `<data-dir>/admin.token`).
    pub fn new(server: &str, data_dir: &Path) -> Result<Self> {
        let token = match std::env::var("PUSHPALS_TOKEN") {
            Ok(token) if !token.trim().is_empty() => token.trim().to_owned(),
            _ => {
                let file = data_dir.join("admin.token");
                std::fs::read_to_string(&file)
                    .map(|t| t.trim().to_owned())
                    .with_context(|| {
                        format!(
                            "no API token: set PUSHPALS_TOKEN, or run where the server's {} is \
                             readable (pass the server's --data-dir)",
                            file.display()
                        )
                    })?
            }
        };
        Self::with_token(server, token)
    }

    /// A client that sends `token` (a worker's own, say).
    pub fn with_token(server: &str, token: String) -> Result<Self> {
        let mut builder = reqwest::Client::builder();
        // A server with a certificate from a private CA (`pushpals tls init`).
        if let Some(path) = std::env::var_os("PUSHPALS_CA_CERT") {
            let pem = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read PUSHPALS_CA_CERT {}",
                    Path::new(&path).display()
                )
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).with_context(|| {
                format!(
                    "PUSHPALS_CA_CERT {} is not a PEM certificate",
                    Path::new(&path).display()
                )
            })?;
            builder = builder.tls_certs_merge([certificate]);
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// A request to `/api/v1{path}`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        // API paths have no fragment: a `#` is part of a name (`#3`, a
        // task's number as lists show it).
        let path = path.replace('#', "%23");
        self.http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends and returns the response, turning transport failures and API
    /// errors into messages that say what to do.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = request.send().await.map_err(|error| {
            if error.is_connect() {
                anyhow!(
                    "cannot reach the Push Pals server at {}: is `pushpals serve` running? \
                     (set --server or PUSHPALS_URL)",
                    self.base
                )
            } else {
                anyhow!("request to {} failed: {error}", self.base)
            }
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body["message"].as_str().unwrap_or("no details");
        match status {
            StatusCode::UNAUTHORIZED => bail!(
                "the server refused the token ({message}); check PUSHPALS_TOKEN or --data-dir"
            ),
            _ => bail!("{message} (HTTP {})", status.as_u16()),
        }
    }

    /// GET a JSON document.
    pub async fn get_json(&self, path: &str) -> Result<Value> {
        let response = self.send(self.request(Method::GET, path)).await?;
        Ok(response.json().await?)
    }

    /// POST (or another method) a JSON body and read JSON back.
    pub async fn call_json(&self, method: Method, path: &str, body: &Value) -> Result<Value> {
        let response = self.send(self.request(method, path).json(body)).await?;
        Ok(response.json().await?)
    }
}
