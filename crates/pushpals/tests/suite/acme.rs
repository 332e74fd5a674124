//! Certificates from ACME: Debian's `pebble` (the ACME test server) on
//! loopback, with `pebble-challtestsrv` resolving the test domain to
//! 127.0.0.1; the server orders a certificate with an HTTP-01 challenge,
//! serves HTTPS with it, and keeps it across a restart.

use super::support::{BIN, isolated, start_server, write_config};
use pushpals_test_support::TempRepo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DOMAIN: &str = "pushpals.test";

/// A free loopback port (free when asked).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pebble and its DNS, on fresh ports. (directory URL, CA PEM path of
/// pebble's own HTTPS, management URL, HTTP-01 port, the processes)
struct Pebble {
    directory: String,
    https_ca: std::path::PathBuf,
    management: String,
    http01: u16,
    _processes: (Running, Running),
}

fn pebble(dir: &Path) -> Pebble {
    assert!(
        Command::new("pebble").arg("-h").output().is_ok(),
        "this test needs Debian's pebble package (apt-get install pebble); .ci/run installs it"
    );
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("pebble-ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("pebble-cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble-key.pem"), key.serialize_pem()).unwrap();
    let (listen, management, http01, dns) = (free_port(), free_port(), free_port(), free_port());
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": dir.join("pebble-cert.pem"),
        "privateKey": dir.join("pebble-key.pem"),
        "httpPort": http01,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let dns_server = Command::new("pebble-challtestsrv")
        .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .args(["-dns01", &format!("127.0.0.1:{dns}")])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Pebble {
        directory: format!("https://127.0.0.1:{listen}/dir"),
        https_ca: dir.join("pebble-ca.pem"),
        management: format!("https://127.0.0.1:{management}"),
        http01,
        _processes: (Running(dns_server), Running(server)),
    }
}

fn acme_config(pebble: &Pebble, challenge_port: u16) -> String {
    format!(
        "[acme]\ndomains = [\"{DOMAIN}\"]\ncontact = [\"mailto:ops@{DOMAIN}\"]\n\
         directory = \"{}\"\ndirectory_ca = \"{}\"\nchallenge_addr = \"127.0.0.1:{challenge_port}\"\n",
        pebble.directory,
        pebble.https_ca.display()
    )
}

/// GET https://pushpals.test:<port>/healthz trusting only pebble's root.
async fn healthz_over_acme(pebble: &Pebble, server_url: &str) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(&pebble.https_ca).unwrap();
    let management = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let root = management
        .get(format!("{}/roots/0", pebble.management))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let address: std::net::SocketAddr = server_url.trim_start_matches("https://").parse().unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&root).unwrap()])
        .resolve(DOMAIN, address)
        .build()
        .unwrap();
    client
        .get(format!("https://{DOMAIN}:{}/healthz", address.port()))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_pebble_is_served_and_kept_across_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let pebble = pebble(work.path());
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(data.path(), &acme_config(&pebble, pebble.http01));

    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let server = tokio::task::spawn_blocking(move || start_server(&repo_path, &data_path))
        .await
        .unwrap();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    assert_eq!(healthz_over_acme(&pebble, &server.url).await, 200);
    let acme = data.path().join("acme");
    for private in ["key.pem", "account.json"] {
        let mode = std::fs::metadata(acme.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{private}");
    }
    let issued = std::fs::read(acme.join("cert.pem")).unwrap();
    drop(server);
    let doctor = super::tls::doctor_tls(data.path());
    assert_eq!(doctor["status"], "ok", "{doctor}");
    assert!(
        doctor["detail"].as_str().unwrap().contains("expires in"),
        "{doctor}"
    );

    // Restarted, the certificate (months left) is kept, not ordered again.
    let (repo_path, data_path) = (repo.path.clone(), data.path().to_path_buf());
    let server = tokio::task::spawn_blocking(move || start_server(&repo_path, &data_path))
        .await
        .unwrap();
    assert_eq!(healthz_over_acme(&pebble, &server.url).await, 200);
    assert_eq!(std::fs::read(acme.join("cert.pem")).unwrap(), issued);
}

#[test]
fn a_taken_challenge_port_or_an_unreachable_ca_is_a_clear_error() {
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("https://127.0.0.1:{}/dir", free_port());
    let serve = |config: String| {
        write_config(data.path(), &config);
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(&repo.path);
        isolated(&mut command, data.path());
        let output = command.output().unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let message = serve(format!(
        "[acme]\ndomains = [\"{DOMAIN}\"]\ndirectory = \"{unreachable}\"\nchallenge_addr = \"{}\"\n",
        taken.local_addr().unwrap()
    ));
    assert!(
        message.contains("cannot answer ACME challenges on"),
        "{message}"
    );
    let message = serve(format!(
        "[acme]\ndomains = [\"{DOMAIN}\"]\ndirectory = \"{unreachable}\"\nchallenge_addr = \"127.0.0.1:{}\"\n",
        free_port()
    ));
    assert!(
        message.contains(&format!("the ACME CA at {unreachable}")),
        "{message}"
    );
}
