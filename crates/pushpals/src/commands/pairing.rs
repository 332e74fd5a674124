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
    if let Some(fingerprint) = created["ca_fingerprint"].as_str() {
        let ca_link = format!("{}/ca.pem", base.trim_end_matches('/'));
        say!("This server's certificate comes from a private CA. Install it on the phone first:");
        say!("  open {ca_link}  (SHA-256 {fingerprint})");
        say!("  iOS: Settings > Profile Downloaded > Install, then Settings > General > About >");
        say!("       Certificate Trust Settings > turn on \"Push Pals private CA\"");
        say!("  Android: Settings > Security > Encryption & credentials > Install a certificate >");
        say!("       CA certificate, and pick the downloaded ca.pem");
        print_qr(&ca_link);
    }
    say!("Pairing code: {code}   (scope: {scope}; works once, for 5 minutes)");
    say!("Open on the phone: {link}");
    print_qr(&link);
    Ok(ExitCode::SUCCESS)
}

/// A QR code of `text`, drawn with half blocks.
fn print_qr(text: &str) {
    if let Ok(qr) = QrCode::new(text.as_bytes()) {
        let picture = qr
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build();
        say!("{picture}");
    }
}

/// `devices [--revoke ID]`.
pub async fn devices(client: &Client, revoke: Option<i64>, json: bool) -> Result<ExitCode> {
    if let Some(id) = revoke {
        client
            .call_json(Method::DELETE, &format!("/devices/{id}"), &json!({}))
            .await?;
        say!("Revoked device token {id}.");
        return Ok(ExitCode::SUCCESS);
    }
    let list = client.get_json("/devices").await?;
    if json {
        print_json(&list);
        return Ok(ExitCode::SUCCESS);
    }
    for device in list["devices"].as_array().into_iter().flatten() {
        say!(
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
