//! The GitHub client against a local server that checks each request and
//! answers as GitHub does.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use pushpals_workspace::forge::{Forge, ForgeError, GitHub, PullRequest};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// One request the fake forge saw: owner, repository, headers, body.
type SeenRequest = (String, String, HeaderMap, Value);

/// What the fake forge saw.
#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<SeenRequest>>>,
}

async fn pulls(
    State(seen): State<Seen>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    seen.requests
        .lock()
        .unwrap()
        .push((owner, repo.clone(), headers.clone(), body.clone()));
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "Bearer good-token");
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "Bad credentials" })),
        );
    }
    if body["head"] == "pushpals/exists" {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "message": "Validation Failed",
                "errors": [{ "message": "A pull request already exists for owner:pushpals/exists." }]
            })),
        );
    }
    (
        StatusCode::CREATED,
        Json(json!({ "html_url": format!("https://forge.test/{repo}/pull/7"), "number": 7 })),
    )
}

async fn fake_forge() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/repos/{owner}/{repo}/pulls", post(pulls))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

fn request(head: &str) -> PullRequest {
    PullRequest {
        title: "Rename foo to bar".into(),
        body: "What changed".into(),
        head: head.into(),
        base: "main".into(),
        draft: true,
    }
}

#[tokio::test]
async fn a_pull_request_is_opened_with_the_right_request() {
    let (url, seen) = fake_forge().await;
    let github = GitHub::new(&url, "acme", "widgets", "good-token".into()).unwrap();
    let opened = github
        .open_pull_request(&request("pushpals/abc"))
        .await
        .unwrap();
    assert_eq!(opened.number, 7);
    assert_eq!(opened.url, "https://forge.test/widgets/pull/7");
    let requests = seen.requests.lock().unwrap();
    let (owner, repo, headers, body) = &requests[0];
    assert_eq!((owner.as_str(), repo.as_str()), ("acme", "widgets"));
    assert_eq!(headers["accept"], "application/vnd.github+json");
    assert_eq!(headers["x-github-api-version"], "2022-11-28");
    assert!(
        headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("pushpals/")
    );
    assert_eq!(body["head"], "pushpals/abc");
    assert_eq!(body["base"], "main");
    assert_eq!(body["draft"], true);
    assert_eq!(body["title"], "Rename foo to bar");
    assert!(
        !format!("{github:?}").contains("good-token"),
        "the token must not show in Debug"
    );
}

#[tokio::test]
async fn an_existing_pull_request_and_a_bad_token_are_clear_errors() {
    let (url, _) = fake_forge().await;
    let github = GitHub::new(&url, "acme", "widgets", "good-token".into()).unwrap();
    let err = github
        .open_pull_request(&request("pushpals/exists"))
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Rejected(_)), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");

    let github = GitHub::new(&url, "acme", "widgets", "bad-token".into()).unwrap();
    let err = github
        .open_pull_request(&request("pushpals/abc"))
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("Bad credentials"), "{err}");
    assert!(!err.to_string().contains("bad-token"));

    let github = GitHub::new("http://127.0.0.1:9", "acme", "widgets", "t".into()).unwrap();
    let err = github
        .open_pull_request(&request("pushpals/abc"))
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Unavailable(_)), "{err}");
}
