//! Bearer tokens: stored hashed, carried with scopes.

use crate::error::ApiError;
use crate::openapi::RouteScopes;
use crate::state::AppState;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use pushpals_core::Actor;
use pushpals_store::{Store, StoreError};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// See tasks, diffs, events, approvals, the audit log.
    Read,
    /// Create, cancel and remove tasks.
    Operate,
    /// Decide approvals.
    Approve,
    /// Everything, including server settings.
    Admin,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Operate => "operate",
            Self::Approve => "approve",
            Self::Admin => "admin",
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    scopes: Vec<String>,
}

impl Caller {
    /// The scopes of the caller's token.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Fails with 403 unless the caller has `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        let has = |s: &str| self.scopes.iter().any(|own| own == s);
        if has(scope.as_str()) || has(Scope::Admin.as_str()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token lacks the {} scope",
                scope.as_str()
            )))
        }
    }

    fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|own| own == scope)
    }

    /// The caller as an event actor.
    pub fn actor(&self) -> Actor {
        Actor::User(self.name.clone())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))
    }
}

/// SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What the token middleware needs: the store (through the state) and the
/// scope each route declares in the API description.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) state: AppState,
    pub(crate) scopes: std::sync::Arc<RouteScopes>,
    /// Where the guarded routes are nested (`/api/v1`); the description's
    /// paths are relative to it.
    pub(crate) prefix: &'static str,
}

impl Guard {
    /// Fails unless the caller holds a scope the matched route declares
    /// (or admin). A route that declares none is refused: fail closed.
    fn check(
        &self,
        method: &Method,
        matched: Option<&MatchedPath>,
        caller: &Caller,
    ) -> Result<(), ApiError> {
        // Unmatched requests go on to the JSON 404.
        let Some(matched) = matched else {
            return Ok(());
        };
        let path = matched
            .as_str()
            .strip_prefix(self.prefix)
            .unwrap_or(matched.as_str());
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let Some(scopes) = self.scopes.of(method, path) else {
            if self.scopes.knows(path) {
                // A described path with a method it does not take: the
                // router answers 405 and nothing runs.
                return Ok(());
            }
            tracing::error!(%method, path, "a guarded route declares no scope");
            return Err(ApiError::forbidden(format!(
                "{method} {path} declares no scope, so no token may call it"
            )));
        };
        if scopes.iter().any(|scope| caller.has(scope)) || caller.has(Scope::Admin.as_str()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token lacks the {} scope that {method} {path} needs",
                scopes.join(" or ")
            )))
        }
    }
}

/// Middleware: resolves `Authorization: Bearer <token>` to a [`Caller`]
/// (401 without a valid one) and checks the route's declared scope (403).
pub(crate) async fn require_token(
    State(guard): State<Guard>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let state = &guard.state;
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        // The scheme is case-insensitive (RFC 9110).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "a bearer token is required: send `Authorization: Bearer <token>` \
                 (the admin token is in <data-dir>/admin.token)",
            )
        })?;
    let record = state
        .store()
        .token(&hash_token(token))
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token is not valid or was revoked"))?;
    let caller = Caller {
        name: record.name,
        scopes: record.scopes.split_whitespace().map(String::from).collect(),
    };
    guard.check(
        request.method(),
        request.extensions().get::<MatchedPath>(),
        &caller,
    )?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// A new random token and its hash.
pub(crate) fn new_token() -> Result<(String, String), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = format!("pp_{}", hex::encode(bytes));
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// The file holding the admin token, inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Makes sure an admin token exists: on first start, creates one, stores
/// only its hash and writes the token to `<data_dir>/admin.token` (mode
/// 0600). Later starts keep the token in that file if it is still valid.
pub async fn ensure_admin_token(store: &Store, data_dir: &Path) -> Result<(), StoreError> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if !existing.is_empty() && store.token(&hash_token(existing)).await?.is_some() {
            return Ok(());
        }
    }
    let (token, token_hash) =
        new_token().map_err(|e| StoreError::Writer(format!("no randomness: {e}")))?;
    store
        .write(move |tx| tx.insert_token("admin", &token_hash, "read operate approve admin"))
        .await?;
    let temporary = data_dir.join(format!("{ADMIN_TOKEN_FILE}.new"));
    let data_dir_error = |source| StoreError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(data_dir_error)?;
    writeln!(file, "{token}").map_err(data_dir_error)?;
    file.sync_all().map_err(data_dir_error)?;
    std::fs::rename(&temporary, &path).map_err(data_dir_error)?;
    Ok(())
}
