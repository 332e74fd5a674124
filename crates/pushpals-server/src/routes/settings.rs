//! Reloading `config.toml` while serving.

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use pushpals_core::Actor;
use pushpals_orchestrator::{Reload, Settings};

/// Reads the server's `config.toml` again and takes it (a missing file is
/// the defaults, as at start). A file that does not parse changes nothing
/// and says what is wrong.
pub async fn reload_from_file(state: &AppState, actor: Actor) -> Result<Reload, String> {
    let Some(path) = state.config_file.as_deref() else {
        return Err("this server was started without a config file to reload".into());
    };
    let next = match std::fs::read_to_string(path) {
        Ok(text) => Settings::from_toml(&text)
            .map_err(|message| format!("{}: {message}; nothing was changed", path.display()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Settings::default(),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    Ok(state.orchestrator.reload_settings(next, actor).await)
}

/// `POST /api/v1/settings/reload`: takes the changed `config.toml` (admin).
#[utoipa::path(
    post,
    path = "/settings/reload",
    tag = "operate",
    responses((status = 200, description = "what was applied and what needs a restart", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["admin"]))
)]
pub async fn reload(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Reload>, ApiError> {
    caller.require(Scope::Admin)?;
    reload_from_file(&state, caller.actor())
        .await
        .map(Json)
        .map_err(ApiError::bad_request)
}
