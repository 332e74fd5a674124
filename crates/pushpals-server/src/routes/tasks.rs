//! Tasks: create, list, show, cancel, remove, diff, events.

use super::task_id;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::json::ApiPath as Path;
use crate::json::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pushpals_core::{AgentWork, Approval, Event, Task};
use pushpals_orchestrator::NewTask;
use pushpals_store::{EventQuery, EventsBefore};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `POST /api/v1/tasks` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// One line saying what to do.
    pub title: String,
    /// The command line to run (a command task).
    pub command: Option<String>,
    /// The brief for the built-in agent (an agent task): `prompt`, and
    /// optionally `scope`, `acceptance`, `depends_on`, `model`.
    pub agent: Option<AgentWork>,
    /// Approve the command in the same gesture, should policy ask about it
    /// (needs the approve scope; a deny still denies).
    #[serde(default)]
    pub approve_command: bool,
    /// The repository to work in (may be left out when there is one).
    pub repo: Option<String>,
}

/// `POST /api/v1/tasks`: creates and queues a task. 201.
#[utoipa::path(
    post,
    path = "/tasks",
    tag = "tasks",
    request_body = CreateTask,
    responses((status = 201, description = "the task, queued", body = Task), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    caller.require(Scope::Operate)?;
    if body.approve_command {
        caller.require(Scope::Approve)?;
    }
    let task = state
        .orchestrator
        .create_task(
            NewTask {
                title: body.title,
                command: body.command,
                agent: body.agent,
                approve_command: body.approve_command,
                repo: body.repo,
            },
            caller.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// `GET /api/v1/tasks`: every task, oldest first.
#[utoipa::path(
    get,
    path = "/tasks",
    tag = "tasks",
    params(crate::routes::RepoQuery),
    responses((status = 200, description = "every task, oldest first", body = crate::openapi::TaskList), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<crate::routes::RepoQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let mut tasks = state.store().tasks(None).await?;
    if let Some(repo) = &query.repo {
        tasks.retain(|t| &t.repo == repo);
    }
    Ok(Json(json!({ "tasks": tasks })))
}

/// A task with its approvals.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    /// The task.
    pub task: Task,
    /// Its approvals, oldest first.
    pub approvals: Vec<Approval>,
    /// How it stands: its last step, checks, and while it is at work the
    /// seconds in its state and its latest output line.
    #[schema(value_type = Object)]
    pub progress: Value,
}

/// `GET /api/v1/tasks/{id}`.
#[utoipa::path(
    get,
    path = "/tasks/{id}",
    tag = "tasks",
    params(crate::openapi::TaskPath),
    responses((status = 200, description = "the task with its approvals", body = TaskView), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    caller.require(Scope::Read)?;
    let id = task_id(&state, &id).await?;
    let task = state.store().task(&id).await?;
    let approvals = state.store().approvals(Some(id.clone()), false).await?;
    let progress = state
        .orchestrator
        .task_status(&id)
        .await
        .ok()
        .and_then(|status| serde_json::to_value(status).ok())
        .unwrap_or(Value::Null);
    Ok(Json(TaskView {
        task,
        approvals,
        progress,
    }))
}

/// `POST /api/v1/tasks/{id}/cancel`.
#[utoipa::path(
    post,
    path = "/tasks/{id}/cancel",
    tag = "tasks",
    params(crate::openapi::TaskPath),
    responses((status = 200, description = "the cancelled task", body = Task), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Task>, ApiError> {
    caller.require(Scope::Operate)?;
    let id = task_id(&state, &id).await?;
    Ok(Json(
        state.orchestrator.cancel_task(&id, caller.actor()).await?,
    ))
}

/// `DELETE /api/v1/tasks/{id}`: removes an ended task's worktree (and its
/// branch unless committed). The task's record and events stay.
#[utoipa::path(
    delete,
    path = "/tasks/{id}",
    tag = "tasks",
    params(crate::openapi::TaskPath),
    responses((status = 200, description = "the task without its worktree", body = Task), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Task>, ApiError> {
    caller.require(Scope::Operate)?;
    let id = task_id(&state, &id).await?;
    Ok(Json(
        state.orchestrator.remove_task(&id, caller.actor()).await?,
    ))
}

/// `GET /api/v1/tasks/{id}/diff`.
#[utoipa::path(
    get,
    path = "/tasks/{id}/diff",
    tag = "tasks",
    params(crate::openapi::TaskPath),
    responses((status = 200, description = "files, unified diff, secret findings, commit message and PR text", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let id = task_id(&state, &id).await?;
    let task_diff = state.orchestrator.diff(&id).await?;
    let files: Vec<Value> = task_diff
        .diff
        .files
        .iter()
        .map(|f| json!({ "path": f.path, "added": f.added, "removed": f.removed }))
        .collect();
    Ok(Json(json!({
        "task_id": task_diff.task_id,
        "base_commit": task_diff.base_commit,
        "branch": task_diff.branch,
        "files": files,
        "diff": task_diff.diff.text,
        "secret_findings": task_diff.secret_findings,
        "commit_message": task_diff.commit_message,
        "pr_text": task_diff.pr_text,
    })))
}

/// `POST /api/v1/tasks/{id}/secrets/{fingerprint}/false-positive` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FalsePositiveBody {
    /// Why the finding is not a secret (required; kept in the audit log).
    pub reason: String,
}

/// `POST /api/v1/tasks/{id}/secrets/{fingerprint}/false-positive`: marks a
/// secret finding of the task's diff a false positive, so the commit can
/// go ahead.
#[utoipa::path(
    post,
    path = "/tasks/{id}/secrets/{fingerprint}/false-positive",
    tag = "tasks",
    params(crate::openapi::TaskPath, ("fingerprint" = String, Path)),
    request_body = FalsePositiveBody,
    responses((status = 200, description = "the override, recorded", body = Object), crate::openapi::ErrorResponses),
    security(("bearer" = ["approve"]))
)]
pub async fn false_positive(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, fingerprint)): Path<(String, String)>,
    ApiJson(body): ApiJson<FalsePositiveBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Approve)?;
    let id = task_id(&state, &id).await?;
    let finding = state
        .orchestrator
        .mark_false_positive(&id, &fingerprint, &caller.name, &body.reason)
        .await?;
    Ok(Json(json!({ "overridden": finding })))
}

/// Paging of event lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventPage {
    /// Only events after this id.
    #[serde(default)]
    pub after: i64,
    /// At most this many (default 1,000, at most 10,000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// Only the last events before this id (paging backwards from the end).
    pub before: Option<i64>,
    /// Only the task's last events (its end).
    #[serde(default)]
    pub last: bool,
}

/// `GET /api/v1/tasks/{id}/events?after=&limit=`, or `?last=true` for the
/// end of a timeline and `?before=` for the page before an event; oldest
/// first either way.
#[utoipa::path(
    get,
    path = "/tasks/{id}/events",
    tag = "tasks",
    params(crate::openapi::TaskPath, EventPage),
    responses((status = 200, description = "the task's events", body = crate::openapi::EventList), crate::openapi::ErrorResponses),
    security(("bearer" = ["read"]))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<EventPage>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let id = task_id(&state, &id).await?;
    let limit = super::page_limit(page.limit, 1000, 10_000, "; page with `after`")?;
    let backwards = page.last || page.before.is_some();
    if backwards && page.after != 0 {
        return Err(ApiError::bad_request(
            "`after` pages forwards and `before`/`last` backwards; give one of them",
        ));
    }
    state.store().task(&id).await?;
    let events: Vec<Event> = if backwards {
        state
            .store()
            .events_before(EventsBefore {
                before: page.before,
                task_id: Some(id),
                kind: None,
                limit,
            })
            .await?
    } else {
        state
            .store()
            .events(EventQuery {
                after: page.after,
                task_id: Some(id),
                limit: Some(limit),
            })
            .await?
    };
    Ok(Json(json!({ "events": events })))
}

/// `POST /api/v1/tasks/{id}/continue` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContinueTask {
    /// The command line of the new run.
    pub command: Option<String>,
    /// Approve the command in the same gesture (needs the approve scope).
    #[serde(default)]
    pub approve_command: bool,
}

/// `POST /api/v1/tasks/{id}/continue`: a new run of an ended task in its
/// worktree and on its branch.
#[utoipa::path(
    post,
    path = "/tasks/{id}/continue",
    tag = "tasks",
    params(crate::openapi::TaskPath),
    request_body = ContinueTask,
    responses((status = 200, description = "the task, queued again", body = Task), crate::openapi::ErrorResponses),
    security(("bearer" = ["operate"]))
)]
pub async fn continue_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ContinueTask>,
) -> Result<Json<Task>, ApiError> {
    caller.require(Scope::Operate)?;
    if body.approve_command {
        caller.require(Scope::Approve)?;
    }
    let id = task_id(&state, &id).await?;
    let task = state
        .orchestrator
        .continue_task(&id, body.command, body.approve_command, caller.actor())
        .await?;
    Ok(Json(task))
}
