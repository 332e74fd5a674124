//! Pairing devices and the companion's files.

use super::support::{api, api_with};
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_pairs_one_device_once_and_its_token_can_be_revoked() {
    let api = api().await;
    let (status, created) = api
        .authed(
            "POST",
            "/api/v1/pairing",
            Some(json!({ "scope": "approve" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let code = created["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(created["path"], format!("/#pair={code}"));

    // Typed loosely (lower case, no dash), it works once.
    let typed = code.to_lowercase().replace('-', "");
    let body = json!({ "code": typed, "device": "my phone" });
    let (status, paired) = api
        .call("POST", "/api/v1/pair", None, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paired}");
    assert_eq!(paired["scopes"], "read operate approve");
    assert_eq!(paired["name"], "device:my phone");
    let token = paired["token"].as_str().unwrap().to_owned();
    let (status, reused) = api.call("POST", "/api/v1/pair", None, Some(body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        reused["message"]
            .as_str()
            .unwrap()
            .contains("used already or expired")
    );

    // The device acts with its scopes, and no more.
    assert_eq!(
        api.call("GET", "/api/v1/tasks", Some(&token), None).await.0,
        StatusCode::OK
    );
    let (status, _) = api
        .call("POST", "/api/v1/pairing", Some(&token), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a device cannot pair others");
    assert_eq!(
        api.call("GET", "/api/v1/devices", Some(&token), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // The admin lists and revokes it; then it is refused.
    let (_, listed) = api.authed("GET", "/api/v1/devices", None).await;
    let devices = listed["devices"].as_array().unwrap();
    assert!(
        devices.iter().all(|d| d.get("token_hash").is_none()),
        "no hashes listed"
    );
    let device = devices
        .iter()
        .find(|d| d["name"] == "device:my phone")
        .unwrap();
    let admin = devices.iter().find(|d| d["name"] == "admin").unwrap();
    let path = format!("/api/v1/devices/{}", device["id"]);
    assert_eq!(api.authed("DELETE", &path, None).await.0, StatusCode::OK);
    assert_eq!(
        api.authed("DELETE", &path, None).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api.call("GET", "/api/v1/tasks", Some(&token), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = api
        .authed("DELETE", &format!("/api/v1/devices/{}", admin["id"]), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        api.authed("DELETE", "/api/v1/devices/999", None).await.0,
        StatusCode::NOT_FOUND
    );

    // Events record it all, never the code or the token.
    let (_, export) = api.authed_text("GET", "/api/v1/audit/export").await;
    for kind in ["pairing_created", "device_paired", "token_revoked"] {
        assert!(export.contains(kind), "{kind} missing");
    }
    assert!(!export.contains(&token) && !export.contains(&code));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pairing_requests_are_refused_and_guessing_is_rate_limited() {
    let api = api().await;
    for (body, expected) in [
        (json!({ "scope": "admin" }), "not offered"),
        (json!({ "scope": "read", "ttl_secs": 0 }), "ttl_secs"),
        (json!({ "scope": "read", "ttl_secs": 100000 }), "ttl_secs"),
    ] {
        let (status, answer) = api.authed("POST", "/api/v1/pairing", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["message"].as_str().unwrap().contains(expected),
            "{answer}"
        );
    }
    let (status, answer) = api
        .call(
            "POST",
            "/api/v1/pair",
            None,
            Some(json!({ "code": "AAAA-BBBB", "device": "" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let mut limited = false;
    for _ in 0..12 {
        let (status, _) = api
            .call(
                "POST",
                "/api/v1/pair",
                None,
                Some(json!({ "code": "AAAA-BBBB", "device": "x" })),
            )
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert!(limited, "guessing codes is rate-limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_companion_is_served_with_strict_headers() {
    let api = api().await;
    let (status, headers, page) = api.raw("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<script type=\"module\" src=\"/app.js\">"));
    let csp = headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff");
    let (status, headers, _) = api.raw("/views/task.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        api.raw("/views/../Cargo.toml").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(api.raw("/nothing.js").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_in_force_are_listed_with_their_source() {
    let api = api().await;
    let (status, body) = api.authed("GET", "/api/v1/policy", None).await;
    assert_eq!(status, StatusCode::OK);
    let rules = body["rules"].as_array().unwrap();
    assert!(rules.len() > 20, "{}", rules.len());
    assert!(rules.iter().all(|r| r["source"] == "builtin"));
    assert!(
        rules
            .iter()
            .any(|r| r["programs"][0] == "sudo" && r["decision"] == "deny")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_are_limited_per_client_and_forwarded_addresses_count_only_from_trusted_proxies() {
    let api = api_with("[server]\ntrusted_proxies = [\"127.0.0.1\"]\n").await;
    let guess = || json!({ "code": "AAAA-BBBB", "device": "x" });
    // A stranger cannot dodge the limit by making up forwarded addresses.
    let mut statuses = Vec::new();
    for i in 0..11 {
        let spoofed = format!("198.51.100.{i}");
        statuses.push(
            api.post_from(
                "10.0.0.9:5000",
                "/api/v1/pair",
                &[("x-forwarded-for", &spoofed)],
                guess(),
            )
            .await,
        );
    }
    assert_eq!(statuses[..10], [StatusCode::UNAUTHORIZED; 10]);
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
    // Another client still gets its own tries.
    assert_eq!(
        api.post_from("10.0.0.10:5000", "/api/v1/pair", &[], guess())
            .await,
        StatusCode::UNAUTHORIZED
    );
    // Behind the trusted proxy, each forwarded client has its own budget.
    for i in 0..10 {
        let status = api
            .post_from(
                "127.0.0.1:4000",
                "/api/v1/pair",
                &[("x-forwarded-for", "203.0.113.5")],
                guess(),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        api.post_from(
            "127.0.0.1:4000",
            "/api/v1/pair",
            &[("x-forwarded-for", "203.0.113.5")],
            guess()
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        api.post_from(
            "127.0.0.1:4000",
            "/api/v1/pair",
            &[("x-forwarded-for", "203.0.113.6")],
            guess()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_filters_are_checked() {
    let api = api().await;
    let (status, body) = api
        .authed("GET", "/api/v1/findings?state=bogus", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("open, fixed, dismissed or all")
    );
    let (status, body) = api.authed("GET", "/api/v1/findings", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["findings"].as_array().unwrap().is_empty(),
        "nothing before a scan"
    );
}
