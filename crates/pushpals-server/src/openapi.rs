//! The API's OpenAPI 3.1 description, built from the handlers' own
//! annotations, and the scope each route declares there.
//!
//! The description is the single list of the API's routes and their
//! scopes: the router is built from the same annotated handlers
//! ([`crate::router`]), and the token middleware lets a request through
//! only with a scope its route declares here. A route without a declared
//! scope is refused (fail closed).

use axum::http::Method;
use pushpals_core::{Approval, Event, Task};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, ToSchema};

/// The body of every error: a stable code and a message saying what was
/// wrong and what to do.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code (`bad_request`, `unauthorized`, ...).
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
    /// More about some errors (e.g. the secret findings that stopped a
    /// commit).
    pub detail: Option<serde_json::Value>,
}

/// `{"tasks": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// Every task, oldest first.
    pub tasks: Vec<Task>,
}

/// `{"events": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Events in id order.
    pub events: Vec<Event>,
}

/// `{"approvals": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalList {
    /// Approvals, oldest first.
    pub approvals: Vec<Approval>,
}

/// The `{id}` of a task route.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TaskPath {
    /// A task id: 1 to 40 of a-z, 0-9 and '-', not starting with '-'.
    #[param(pattern = r"^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: String,
}

/// The error statuses every route may answer with, each with an
/// [`ErrorBody`].
pub struct ErrorResponses;

impl utoipa::IntoResponses for ErrorResponses {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        BTreeMap::from([
            (
                "4XX".to_owned(),
                error(
                    "the request was wrong: malformed (400), no or a bad token (401), a token \
                     without the scope (403), no such thing (404), conflicting with the state \
                     (409), too large (413), too many (429)",
                ),
            ),
            (
                "5XX".to_owned(),
                error("the server failed; its log says why"),
            ),
        ])
    }
}

/// Adds the bearer scheme and the shared schemas.
struct Components;

impl Modify for Components {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let mut schemas = Vec::new();
        <ErrorBody as ToSchema>::schemas(&mut schemas);
        components.schemas.insert(
            "ErrorBody".to_owned(),
            <ErrorBody as utoipa::PartialSchema>::schema(),
        );
        for (name, schema) in schemas {
            components.schemas.insert(name, schema);
        }
    }
}

/// The description's fixed parts; the paths come from the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Push Pals",
        description = "The API of a self-hosted coding team: tasks, approvals, the audit log, \
                       the live event stream. Every route under /api/v1 needs a bearer token \
                       with the scope its `security` names (or admin).",
    ),
    modifiers(&Components),
    tags(
        (name = "tasks"), (name = "approvals"), (name = "chat"), (name = "findings"),
        (name = "audit"), (name = "events"), (name = "grants"), (name = "pairing"),
        (name = "push"), (name = "settings"), (name = "operate"), (name = "workers"),
    )
)]
pub struct ApiDoc;

/// The scopes each route accepts, by method and path template, read from
/// the description.
#[derive(Debug, Clone, Default)]
pub struct RouteScopes {
    routes: HashMap<(Method, String), Vec<String>>,
    paths: HashSet<String>,
}

impl RouteScopes {
    /// The declared scopes of every operation in `openapi`. An operation
    /// with an empty security requirement (`security(())`) is public and
    /// gets no entry.
    pub fn from_openapi(openapi: &OpenApi) -> Self {
        let mut routes = HashMap::new();
        let mut paths = HashSet::new();
        for (path, item) in &openapi.paths.paths {
            paths.insert(path.clone());
            for (method, operation) in operations(item) {
                let scopes: Vec<String> = operation
                    .security
                    .iter()
                    .flatten()
                    .filter_map(|requirement| {
                        serde_json::to_value(requirement)
                            .ok()?
                            .get("bearer")?
                            .as_array()
                            .cloned()
                    })
                    .flatten()
                    .filter_map(|scope| scope.as_str().map(str::to_owned))
                    .collect();
                if !scopes.is_empty() {
                    routes.insert((method, path.clone()), scopes);
                }
            }
        }
        Self { routes, paths }
    }

    /// Whether the description has the path (with any method).
    pub fn knows(&self, path: &str) -> bool {
        self.paths.contains(path)
    }

    /// The scopes the route takes; `None` when it declares none.
    pub fn of(&self, method: &Method, path: &str) -> Option<&[String]> {
        self.routes
            .get(&(method.clone(), path.to_owned()))
            .map(Vec::as_slice)
    }
}

/// Each operation of a path item with its method.
pub fn operations(item: &utoipa::openapi::PathItem) -> Vec<(Method, &Operation)> {
    [
        (Method::GET, &item.get),
        (Method::POST, &item.post),
        (Method::PUT, &item.put),
        (Method::DELETE, &item.delete),
        (Method::PATCH, &item.patch),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_ref().map(|o| (method, o)))
    .collect()
}
