//! `pair` and `devices`: companion devices.

use super::print_json;
use crate::client::Client;
use anyhow::Result;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use reqwest::Method;
use serde_json::json;
use std::process::ExitCode;

/// `pair`: a one-time code, its link and a QR code of the link.
pub async fn pair(client: &Client, scope: &str, base: &str, json: bool) -> Result<ExitCode> {
    let created = client
        .call_json(Method::POST, "/pairing", &json!({ "scope": scope }))
        .await?;
    if json {
        print_json(&created);
        return Ok(ExitCode::SUCCESS);
    }
    let code = created["code"].as_str().unwrap_or_default();
    let link = format!(
        "{}{}",
        base.trim_end_matches('/'),
        created["path"].as_str().unwrap_or_default()
    );
    println!("Pairing code: {code}   (scope: {scope}; works once, for 5 minutes)");
    println!("Open on the phone: {link}");
    if let Ok(qr) = QrCode::new(link.as_bytes()) {
        let picture = qr
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build();
        println!("{picture}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `devices [--revoke ID]`.
pub async fn devices(client: &Client, revoke: Option<i64>, json: bool) -> Result<ExitCode> {
    if let Some(id) = revoke {
        client
            .call_json(Method::DELETE, &format!("/devices/{id}"), &json!({}))
            .await?;
        println!("Revoked device token {id}.");
        return Ok(ExitCode::SUCCESS);
    }
    let list = client.get_json("/devices").await?;
    if json {
        print_json(&list);
        return Ok(ExitCode::SUCCESS);
    }
    for device in list["devices"].as_array().into_iter().flatten() {
        println!(
            "{:>4} {:<24} {:<22} {}{}",
            device["id"],
            device["name"].as_str().unwrap_or_default(),
            device["scopes"].as_str().unwrap_or_default(),
            device["created_at"].as_str().unwrap_or_default(),
            device["revoked_at"]
                .as_str()
                .map(|at| format!("  revoked {at}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
