//! Serving HTTPS from certificate files, and refusing plain HTTP where it
//! would cross a network.

use super::support::*;
use pushpals_test_support::TempRepo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A CA, and a certificate for `localhost` it signed: (CA PEM, cert PEM, key PEM).
fn certificate_from_a_new_ca() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The `tls` line of `pushpals doctor --json`.
pub(crate) fn doctor_tls(data: &Path) -> serde_json::Value {
    let output = std::process::Command::new(BIN)
        .args(["doctor", "--json", "--server", "http://127.0.0.1:9"])
        .env("PUSHPALS_DATA_DIR", data)
        .env("XDG_CONFIG_HOME", data.join("config-home"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tls")
        .unwrap()
        .clone()
}

/// A self-signed certificate for `localhost` valid only from `from` to
/// `to` (years): (cert PEM, key PEM).
fn certificate_valid(from: i32, to: i32) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(to, 1, 1);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn serve_fails(repo: &Path, data: &Path, addr: &str) -> String {
    let mut command = std::process::Command::new(BIN);
    command.args(["serve", "--addr", addr, "--repo"]).arg(repo);
    isolated(&mut command, data);
    let output = command.output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn healthz(url: &str, ca_pem: &str) -> Result<u16, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_from_files_reloads_a_changed_certificate() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate_from_a_new_ca();
    let (cert_path, key_path) = (data.path().join("cert.pem"), data.path().join("key.pem"));
    write(&cert_path, &cert, 0o644);
    write(&key_path, &key, 0o600);
    write_config(
        data.path(),
        &format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let server = tokio::task::spawn_blocking(move || start_server(&repo_path, &data_path))
        .await
        .unwrap();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let url = server.url.replace("127.0.0.1", "localhost");
    assert_eq!(healthz(&url, &ca).await, Ok(200));

    // A renewed certificate from another CA is picked up without a restart.
    let (new_ca, new_cert, new_key) = certificate_from_a_new_ca();
    assert!(
        healthz(&url, &new_ca).await.is_err(),
        "the new CA is not trusted yet"
    );
    write(&key_path, &new_key, 0o600);
    write(&cert_path, &new_cert, 0o644);
    let mut renewed = false;
    for _ in 0..50 {
        if healthz(&url, &new_ca).await == Ok(200) {
            renewed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(renewed, "the renewed certificate was not served");
    drop(server);
}

#[test]
fn bad_key_files_and_plain_http_on_the_network_are_refused() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificate_from_a_new_ca();
    let (_, _, other_key) = certificate_from_a_new_ca();
    let (cert_path, key_path) = (data.path().join("cert.pem"), data.path().join("key.pem"));
    write(&cert_path, &cert, 0o644);
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert_path.display(),
        key_path.display()
    );
    write_config(data.path(), &tls);

    write(&key_path, &key, 0o644);
    let stderr = serve_fails(&repo.path, data.path(), "127.0.0.1:0");
    assert!(
        stderr.contains("readable by other users") && stderr.contains("chmod 600"),
        "{stderr}"
    );

    write(&key_path, &other_key, 0o600);
    let stderr = serve_fails(&repo.path, data.path(), "127.0.0.1:0");
    assert!(stderr.contains("cannot be used together"), "{stderr}");

    // Expired, or not valid yet: refused, with the date and what to do.
    let (expired, expired_key) = certificate_valid(2019, 2021);
    write(&cert_path, &expired, 0o644);
    write(&key_path, &expired_key, 0o600);
    let stderr = serve_fails(&repo.path, data.path(), "127.0.0.1:0");
    assert!(
        stderr.contains("expired on 2021-01-01") && stderr.contains("renew it"),
        "{stderr}"
    );
    let (future, future_key) = certificate_valid(2090, 2091);
    write(&cert_path, &future, 0o644);
    write(&key_path, &future_key, 0o600);
    let stderr = serve_fails(&repo.path, data.path(), "127.0.0.1:0");
    assert!(stderr.contains("valid only from 2090-01-01"), "{stderr}");

    // A good one: doctor tells the days left.
    let (good, good_key) = certificate_valid(2020, 2040);
    write(&cert_path, &good, 0o644);
    write(&key_path, &good_key, 0o600);
    let tls_check = doctor_tls(data.path());
    assert_eq!(tls_check["status"], "ok", "{tls_check}");
    let detail = tls_check["detail"].as_str().unwrap();
    assert!(
        detail.contains("expires in") && detail.contains("2040-01-01"),
        "{detail}"
    );

    // Five days left: a warning to renew.
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(80);
    params.not_after =
        time::OffsetDateTime::now_utc() + time::Duration::days(5) + time::Duration::hours(1);
    write(&cert_path, &params.self_signed(&key).unwrap().pem(), 0o644);
    write(&key_path, &key.serialize_pem(), 0o600);
    let tls_check = doctor_tls(data.path());
    assert_eq!(tls_check["status"], "warn", "{tls_check}");
    assert!(
        tls_check["detail"]
            .as_str()
            .unwrap()
            .contains("expires in 5 days"),
        "{tls_check}"
    );

    write_config(data.path(), "");
    let stderr = serve_fails(&repo.path, data.path(), "0.0.0.0:0");
    assert!(
        stderr.contains("in the clear") && stderr.contains("--insecure-http"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_from_tls_init_serves_https_and_pairing_shows_how_to_trust_it() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("tls");
    let init = std::process::Command::new(BIN)
        .args([
            "tls",
            "init",
            "--name",
            "localhost",
            "--name",
            "127.0.0.1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let printed = String::from_utf8_lossy(&init.stdout).into_owned();
    assert!(printed.contains("[tls]") && printed.contains("CA fingerprint (SHA-256): "));
    for (file, mode) in [
        ("ca.pem", 0o644),
        ("ca-key.pem", 0o600),
        ("cert.pem", 0o644),
        ("key.pem", 0o600),
    ] {
        let actual = std::fs::metadata(out.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(actual, mode, "{file}");
    }
    let again = std::process::Command::new(BIN)
        .args(["tls", "init", "--name", "localhost", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    write_config(
        data.path(),
        &format!(
            "[tls]\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\nca = \"{0}/ca.pem\"\n",
            out.display()
        ),
    );
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let server = tokio::task::spawn_blocking(move || start_server(&repo_path, &data_path))
        .await
        .unwrap();
    let ca = std::fs::read_to_string(out.join("ca.pem")).unwrap();
    assert_eq!(
        healthz(&server.url, &ca).await,
        Ok(200),
        "the IP address is in the certificate"
    );
    let fingerprint = printed
        .lines()
        .find_map(|l| l.strip_prefix("CA fingerprint (SHA-256): "))
        .unwrap()
        .to_owned();
    let ca_path = out.join("ca.pem");
    let (pairing, server) = tokio::task::spawn_blocking(move || {
        let output = server
            .cli()
            .env("PUSHPALS_CA_CERT", &ca_path)
            .args(["pair", "--json"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        (value, server)
    })
    .await
    .unwrap();
    assert_eq!(pairing["ca_fingerprint"], fingerprint.as_str());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let served = client
        .get(format!("{}/ca.pem", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        served.headers()["content-type"],
        "application/x-x509-ca-cert"
    );
    assert_eq!(served.text().await.unwrap(), ca);
    drop(server);
}
