//! Certificates from an ACME CA (Let's Encrypt, or any RFC 8555 server)
//! for the domains named in `[acme]`, answered with HTTP-01 challenges.
//!
//! The account key, the certificate and its key live in `<data>/acme/`
//! (keys mode 0600). A certificate with more than [`RENEW_BEFORE_DAYS`]
//! left is used as it is; otherwise a new one is ordered. The server reads
//! the files through [`crate::tls::TlsListener`], which picks up a renewed
//! certificate without a restart.

use crate::tls::TlsFiles;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Renew when fewer days than this are left.
pub const RENEW_BEFORE_DAYS: i64 = 30;

/// What `[acme]` says.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// The names the certificate is for.
    pub domains: Vec<String>,
    /// `mailto:` contacts given to the CA.
    pub contact: Vec<String>,
    /// The CA's directory URL.
    pub directory: String,
    /// A root to trust for the CA's own HTTPS (a test or private CA).
    pub directory_ca: Option<PathBuf>,
    /// Where HTTP-01 challenges are answered (port 80 for a public CA).
    pub challenge_addr: SocketAddr,
}

/// Why a certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA refused or failed.
    #[error("the ACME CA at {directory}: {message}")]
    Ca {
        /// The directory URL.
        directory: String,
        /// What went wrong.
        message: String,
    },
    /// The challenge address cannot be listened on.
    #[error(
        "cannot answer ACME challenges on {addr}: {source}; the CA must reach this address on \
         port 80 of each domain (set [acme] challenge_addr, or free the port)"
    )]
    Challenge {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A file in the ACME directory cannot be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the ACME files are, under `dir`.
pub fn files(dir: &Path) -> TlsFiles {
    TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// Makes sure `dir` holds a certificate for the configured domains with
/// more than [`RENEW_BEFORE_DAYS`] left, ordering one when not. Returns
/// whether a new certificate was issued.
pub async fn ensure_certificate(config: &AcmeConfig, dir: &Path) -> Result<bool, AcmeError> {
    if current_is_good(config, dir) {
        return Ok(false);
    }
    issue(config, dir).await?;
    Ok(true)
}

/// Checks twice a day and renews when due, until the process ends.
pub async fn renew_forever(config: AcmeConfig, dir: PathBuf) {
    loop {
        tokio::time::sleep(Duration::from_secs(12 * 3600)).await;
        match ensure_certificate(&config, &dir).await {
            Ok(true) => tracing::info!(domains = ?config.domains, "renewed the ACME certificate"),
            Ok(false) => {}
            Err(error) => tracing::error!(%error, "ACME renewal failed; will try again"),
        }
    }
}

/// A certificate is there, loads, names every domain and has time left.
fn current_is_good(config: &AcmeConfig, dir: &Path) -> bool {
    let files = files(dir);
    if files.load().is_err() {
        return false;
    }
    let Ok(expires) = files.expires() else {
        return false;
    };
    let left = (expires - time::OffsetDateTime::now_utc()).whole_days();
    let names = std::fs::read(dir.join("domains")).unwrap_or_default();
    left > RENEW_BEFORE_DAYS && names == config.domains.join("\n").as_bytes()
}

fn ca_error(config: &AcmeConfig, error: impl std::fmt::Display) -> AcmeError {
    AcmeError::Ca {
        directory: config.directory.clone(),
        message: error.to_string(),
    }
}

/// Writes `text` to `path` through a temporary file, mode `mode`.
fn write_file(path: &Path, text: &[u8], mode: u32) -> Result<(), AcmeError> {
    let failed = |source| AcmeError::File {
        path: path.to_path_buf(),
        source,
    };
    let temporary = path.with_extension("new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(failed)?;
    file.write_all(text).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

async fn account(config: &AcmeConfig, dir: &Path) -> Result<Account, AcmeError> {
    let builder = match &config.directory_ca {
        Some(root) => Account::builder_with_root(root),
        None => Account::builder(),
    }
    .map_err(|e| ca_error(config, e))?;
    let stored = dir.join("account.json");
    if let Ok(text) = std::fs::read(&stored)
        && let Ok(credentials) = serde_json::from_slice::<AccountCredentials>(&text)
    {
        return builder
            .from_credentials(credentials)
            .await
            .map_err(|e| ca_error(config, e));
    }
    let contact: Vec<&str> = config.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.directory.clone(),
            None,
        )
        .await
        .map_err(|e| ca_error(config, e))?;
    let text = serde_json::to_vec(&credentials).map_err(|e| ca_error(config, e))?;
    write_file(&stored, &text, 0o600)?;
    Ok(account)
}

type Tokens = Arc<Mutex<HashMap<String, String>>>;

async fn answer(
    State(tokens): State<Tokens>,
    UrlPath(token): UrlPath<String>,
) -> (StatusCode, String) {
    let known = tokens.lock().ok().and_then(|t| t.get(&token).cloned());
    match known {
        Some(key_authorization) => (StatusCode::OK, key_authorization),
        None => (StatusCode::NOT_FOUND, "no such challenge".into()),
    }
}

/// Orders a certificate, answering the CA's HTTP-01 challenges on the
/// challenge address while it validates.
async fn issue(config: &AcmeConfig, dir: &Path) -> Result<(), AcmeError> {
    std::fs::create_dir_all(dir).map_err(|source| AcmeError::File {
        path: dir.to_path_buf(),
        source,
    })?;
    let tokens: Tokens = Arc::default();
    let listener = tokio::net::TcpListener::bind(config.challenge_addr)
        .await
        .map_err(|source| AcmeError::Challenge {
            addr: config.challenge_addr,
            source,
        })?;
    let app = Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answer))
        .with_state(tokens.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let result = order(config, dir, &tokens).await;
    server.abort();
    result
}

async fn order(config: &AcmeConfig, dir: &Path, tokens: &Tokens) -> Result<(), AcmeError> {
    let account = account(config, dir).await?;
    let identifiers: Vec<Identifier> = config
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| ca_error(config, e))?;
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| ca_error(config, e))?;
        match authorization.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => return Err(ca_error(config, format!("an authorization is {other:?}"))),
        }
        let mut challenge = authorization
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| ca_error(config, "the CA offers no HTTP-01 challenge"))?;
        let key_authorization = challenge.key_authorization().as_str().to_owned();
        if let Ok(mut tokens) = tokens.lock() {
            tokens.insert(challenge.token.clone(), key_authorization);
        }
        challenge
            .set_ready()
            .await
            .map_err(|e| ca_error(config, e))?;
    }
    let patience = RetryPolicy::new().timeout(Duration::from_secs(120));
    let status = order
        .poll_ready(&patience)
        .await
        .map_err(|e| ca_error(config, e))?;
    if status != OrderStatus::Ready {
        return Err(ca_error(
            config,
            format!("the order is {status:?}: the CA could not validate every domain"),
        ));
    }
    let key = order.finalize().await.map_err(|e| ca_error(config, e))?;
    let chain = order
        .poll_certificate(&patience)
        .await
        .map_err(|e| ca_error(config, e))?;
    write_file(&dir.join("key.pem"), key.as_bytes(), 0o600)?;
    write_file(&dir.join("cert.pem"), chain.as_bytes(), 0o644)?;
    write_file(
        &dir.join("domains"),
        config.domains.join("\n").as_bytes(),
        0o644,
    )?;
    Ok(())
}
