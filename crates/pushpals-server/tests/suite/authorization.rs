//! The authorization matrix: every route of the API description × every
//! kind of caller → the status the route's declared scope implies.

use super::support::{Api, api};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use pushpals_server::openapi::operations;
use pushpals_server::router;
use serde_json::json;
use tower::ServiceExt;

/// A caller and the scopes its token carries (`None`: no valid token).
struct Caller {
    name: &'static str,
    header: Option<String>,
    scopes: Option<&'static [&'static str]>,
}

/// A worker's token: named by the admin, then enrolled.
async fn enrolled(api: &Api, name: &str) -> String {
    let (status, added) = api
        .authed(
            "POST",
            "/api/v1/workers",
            Some(json!({ "name": name, "labels": ["cargo"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let (status, enrolled) = api
        .call(
            "POST",
            "/api/v1/workers/enrol",
            None,
            Some(json!({
                "token": added["enrolment_token"],
                "cores": 2,
                "version": env!("CARGO_PKG_VERSION"),
                "time": pushpals_core::timestamp::now(),
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    enrolled["token"].as_str().unwrap().to_owned()
}

async fn paired(api: &Api, scope: &str, device: &str) -> String {
    let (status, created) = api
        .authed("POST", "/api/v1/pairing", Some(json!({ "scope": scope })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let code = created["code"].as_str().unwrap();
    let (status, paired) = api
        .call(
            "POST",
            "/api/v1/pair",
            None,
            Some(json!({ "code": code, "device": device })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paired}");
    paired["token"].as_str().unwrap().to_owned()
}

/// The status only: streaming routes never end their body.
async fn status_of(api: &Api, method: &str, uri: &str, header: Option<&str>) -> StatusCode {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(header) = header {
        request = request.header("authorization", header);
    }
    let request = request
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    router(api.state.clone())
        .oneshot(request)
        .await
        .unwrap()
        .status()
}

/// Path parameters filled with values that name nothing, so no call
/// changes anything it could not change back.
fn concrete(path: &str) -> String {
    path.replace("{id}", "999999")
        .replace("{fingerprint}", "0000000000000000")
        .replace("{hash}", &"0".repeat(64))
        .replace("{kind}", "no-such-grant")
        .replace("{name}", "no-such-worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_its_declared_scope_says() {
    let api = api().await;
    let reader = paired(&api, "read", "reader").await;
    let approver = paired(&api, "approve", "approver").await;
    let revoked = paired(&api, "read", "gone").await;
    let worker = enrolled(&api, "build-1").await;
    let (_, devices) = api.authed("GET", "/api/v1/devices", None).await;
    let gone = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "device:gone")
        .unwrap()["id"]
        .clone();
    let (status, _) = api
        .authed("DELETE", &format!("/api/v1/devices/{gone}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let callers = [
        Caller {
            name: "no token",
            header: None,
            scopes: None,
        },
        Caller {
            name: "malformed",
            header: Some("Bearer".into()),
            scopes: None,
        },
        Caller {
            name: "not bearer",
            header: Some(format!("Basic {}", api.token)),
            scopes: None,
        },
        Caller {
            name: "unknown",
            header: Some("Bearer pp_0000".into()),
            scopes: None,
        },
        Caller {
            name: "revoked",
            header: Some(format!("Bearer {revoked}")),
            scopes: None,
        },
        Caller {
            name: "read device",
            header: Some(format!("Bearer {reader}")),
            scopes: Some(&["read"]),
        },
        Caller {
            name: "approve device",
            header: Some(format!("Bearer {approver}")),
            scopes: Some(&["read", "operate", "approve"]),
        },
        Caller {
            name: "worker",
            header: Some(format!("Bearer {worker}")),
            scopes: Some(&["worker"]),
        },
        Caller {
            name: "admin",
            header: Some(format!("Bearer {}", api.token)),
            scopes: Some(&["admin"]),
        },
    ];

    let description = pushpals_server::openapi();
    let mut checked = 0;
    for (path, item) in &description.paths.paths {
        for (method, operation) in operations(item) {
            let declared: Vec<String> = serde_json::to_value(&operation.security)
                .unwrap()
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.get("bearer")?.as_array().cloned())
                .flatten()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            let public = declared.is_empty();
            assert!(
                public
                    == [
                        "/healthz",
                        "/readyz",
                        "/api/v1/openapi.json",
                        "/api/v1/pair",
                        "/api/v1/workers/enrol"
                    ]
                    .contains(&path.as_str()),
                "{method} {path}: only the probes, the description, pairing and enrolling a \
                 worker are public; every other route declares a scope"
            );
            let uri = concrete(path);
            for caller in &callers {
                let status = status_of(&api, method.as_str(), &uri, caller.header.as_deref()).await;
                let expected_denial = match caller.scopes {
                    _ if public => None,
                    None => Some(StatusCode::UNAUTHORIZED),
                    Some(own) if own.contains(&"admin") => None,
                    Some(own) if declared.iter().any(|d| own.contains(&d.as_str())) => None,
                    Some(_) => Some(StatusCode::FORBIDDEN),
                };
                match expected_denial {
                    Some(denial) => assert_eq!(
                        status, denial,
                        "{method} {path} as {}: declared {declared:?}",
                        caller.name
                    ),
                    None => assert!(
                        status != StatusCode::UNAUTHORIZED
                            && status != StatusCode::FORBIDDEN
                            && !status.is_server_error(),
                        "{method} {path} as {} got {status}: declared {declared:?}",
                        caller.name
                    ),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40 * callers.len(), "only {checked} calls");
}

#[tokio::test]
async fn the_description_is_served_and_names_every_scope() {
    let api = api().await;
    let (status, served) = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        served["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        served["openapi"]
    );
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let create = &served["paths"]["/api/v1/tasks"]["post"];
    assert_eq!(create["security"][0]["bearer"][0], "operate");
    assert!(create["responses"]["201"].is_object(), "{create}");
    assert!(create["responses"]["4XX"].is_object(), "{create}");
    // What the product promises about who may do what.
    for (method, path, scope) in [
        ("get", "/api/v1/tasks", "read"),
        ("post", "/api/v1/tasks", "operate"),
        ("post", "/api/v1/approvals/{id}/decide", "approve"),
        ("post", "/api/v1/tasks/{id}/approve", "approve"),
        (
            "post",
            "/api/v1/tasks/{id}/secrets/{fingerprint}/false-positive",
            "approve",
        ),
        ("put", "/api/v1/grants/{kind}", "admin"),
        ("delete", "/api/v1/grants/{kind}", "admin"),
        ("post", "/api/v1/pairing", "admin"),
        ("get", "/api/v1/devices", "admin"),
        ("delete", "/api/v1/devices/{id}", "admin"),
        ("post", "/api/v1/gc", "admin"),
        ("get", "/api/v1/events", "read"),
        ("get", "/api/v1/metrics", "read"),
        ("get", "/api/v1/chat", "read"),
        ("post", "/api/v1/chat", "operate"),
    ] {
        let declared = &served["paths"][path][method]["security"][0]["bearer"];
        assert_eq!(declared, &json!([scope]), "{method} {path}");
    }
    assert!(served["components"]["schemas"]["Task"].is_object());
    // Every reference resolves.
    let text = served.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            served["components"]["schemas"][name].is_object(),
            "#/components/schemas/{name} is referenced but missing"
        );
    }
    assert!(served["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn each_device_reads_its_own_chat_history_and_nothing_else() {
    let api = api().await;
    let phone = paired(&api, "approve", "phone").await;
    let laptop = paired(&api, "approve", "laptop").await;
    let (status, reply) = api
        .call(
            "POST",
            "/api/v1/chat",
            Some(&phone),
            Some(json!({ "message": "status" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    // A refused message is in the history too, with what was answered.
    let long = "x".repeat(20 * 1024);
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/chat",
            Some(&phone),
            Some(json!({ "message": long })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, history) = api.call("GET", "/api/v1/chat", Some(&phone), None).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let lines = history["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 4, "{history}");
    assert_eq!(
        (lines[0]["who"].as_str(), lines[0]["text"].as_str()),
        (Some("me"), Some("status"))
    );
    assert_eq!(lines[1]["who"], "them");
    assert_eq!(lines[1]["text"], reply["reply"]);
    assert!(
        lines[2]["text"].as_str().unwrap().len() < long.len(),
        "kept in part"
    );
    assert!(
        lines[3]["text"].as_str().unwrap().starts_with('⚠'),
        "{history}"
    );
    // Another device has its own (empty) history.
    let (_, other) = api.call("GET", "/api/v1/chat", Some(&laptop), None).await;
    assert_eq!(other["lines"], json!([]));
    let (status, body) = api
        .call("GET", "/api/v1/chat?limit=0", Some(&phone), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
