//! HTTPS from certificate and key files (from any ACME client, `tailscale
//! cert`, or `pushpals tls init`), reloaded when the files change.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take for its TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// How often the files are looked at for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is readable by other users.
    #[error(
        "the TLS key {path} is readable by other users (mode {mode:o}); make it private: chmod 600 {path}"
    )]
    KeyNotPrivate {
        /// The key file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The certificate is outside its validity period.
    #[error(
        "the TLS certificate {path} is not valid now: {when}; renew it (your ACME client, \
         `tailscale cert`, or `pushpals tls init` for the private CA) and the server picks \
         it up"
    )]
    NotValidNow {
        /// The certificate file.
        path: PathBuf,
        /// `expired on ...` or `valid only from ...`.
        when: String,
    },
    /// The file holds no certificate or no key.
    #[error("{path} holds no {what} in PEM form")]
    Missing {
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// rustls refused the pair (for instance a key that does not belong to
    /// the certificate).
    #[error("the certificate {cert} and the key {key} cannot be used together: {message}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        message: String,
    },
}

/// A certificate's validity period (not before, not after).
fn validity(
    certificate: &CertificateDer<'_>,
) -> Option<(time::OffsetDateTime, time::OffsetDateTime)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let validity = parsed.validity();
    Some((
        validity.not_before.to_datetime(),
        validity.not_after.to_datetime(),
    ))
}

/// The certificate chain and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's first.
    pub cert: PathBuf,
    /// PEM private key (mode 0600 or stricter).
    pub key: PathBuf,
}

impl TlsFiles {
    fn stamp(&self) -> Option<(SystemTime, SystemTime)> {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((modified(&self.cert)?, modified(&self.key)?))
    }

    /// Reads and checks both files into a server configuration.
    pub fn load(&self) -> Result<ServerConfig, TlsError> {
        let read = |path: &Path| TlsError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::other("unreadable"),
        };
        let mode = std::fs::metadata(&self.key)
            .map_err(|source| TlsError::Read {
                path: self.key.clone(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(TlsError::KeyNotPrivate {
                path: self.key.clone(),
                mode: mode & 0o777,
            });
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|_| read(&self.cert))?
            .collect::<Result<_, _>>()
            .map_err(|_| TlsError::Missing {
                path: self.cert.clone(),
                what: "certificate",
            })?;
        let Some(leaf) = chain.first() else {
            return Err(TlsError::Missing {
                path: self.cert.clone(),
                what: "certificate",
            });
        };
        let (not_before, not_after) = validity(leaf).ok_or_else(|| TlsError::Missing {
            path: self.cert.clone(),
            what: "readable X.509 certificate",
        })?;
        let now = time::OffsetDateTime::now_utc();
        if now > not_after {
            return Err(TlsError::NotValidNow {
                path: self.cert.clone(),
                when: format!(
                    "it expired on {}",
                    pushpals_core::timestamp::format_utc(not_after)
                ),
            });
        }
        if now < not_before {
            return Err(TlsError::NotValidNow {
                path: self.cert.clone(),
                when: format!(
                    "it is valid only from {}",
                    pushpals_core::timestamp::format_utc(not_before)
                ),
            });
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|_| TlsError::Missing {
            path: self.key.clone(),
            what: "private key",
        })?;
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| self.unusable(e))?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(|e| self.unusable(e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// When the server's certificate expires.
    pub fn expires(&self) -> Result<time::OffsetDateTime, TlsError> {
        let missing = || TlsError::Missing {
            path: self.cert.clone(),
            what: "certificate",
        };
        let leaf = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|_| missing())?
            .next()
            .ok_or_else(missing)?
            .map_err(|_| missing())?;
        validity(&leaf)
            .map(|(_, not_after)| not_after)
            .ok_or_else(missing)
    }

    fn unusable(&self, error: rustls::Error) -> TlsError {
        TlsError::Unusable {
            cert: self.cert.clone(),
            key: self.key.clone(),
            message: error.to_string(),
        }
    }
}

/// A listener that hands out TLS streams; handshakes run in their own
/// tasks so a slow client cannot hold up others.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Serves TLS on `tcp` with the files' certificate; a changed file is
    /// picked up for new connections (a broken change is logged and the
    /// last good certificate kept).
    pub fn new(tcp: TcpListener, files: TlsFiles) -> Result<Self, TlsError> {
        let acceptor = Arc::new(RwLock::new(TlsAcceptor::from(Arc::new(files.load()?))));
        let local = tcp.local_addr().map_err(|source| TlsError::Read {
            path: PathBuf::from("<listener>"),
            source,
        })?;
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(reload(files, Arc::clone(&acceptor)));
        tokio::spawn(accept_loop(tcp, acceptor, sender));
        Ok(Self { ready, local })
    }
}

async fn reload(files: TlsFiles, acceptor: Arc<RwLock<TlsAcceptor>>) {
    let mut seen = files.stamp();
    loop {
        tokio::time::sleep(RELOAD_CHECK).await;
        let now = files.stamp();
        if now == seen {
            continue;
        }
        seen = now;
        match files.load() {
            Ok(config) => {
                if let Ok(mut current) = acceptor.write() {
                    *current = TlsAcceptor::from(Arc::new(config));
                }
                tracing::info!(cert = %files.cert.display(), "reloaded the TLS certificate");
            }
            Err(error) => {
                tracing::error!(%error, "the changed TLS files cannot be used; keeping the last good ones")
            }
        }
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: Arc<RwLock<TlsAcceptor>>,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(current) = acceptor.read().map(|a| a.clone()) else {
            continue;
        };
        let handed = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_LIMIT, current.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = handed.send((tls, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%error, %peer, "a TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "a TLS handshake timed out"),
            }
        });
        if ready.is_closed() {
            return;
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(accepted) = self.ready.recv().await {
                return accepted;
            }
            // The accept loop ended: nothing more will come.
            std::future::pending::<()>().await;
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A private CA and a server certificate it signed, as PEM text.
#[derive(Debug, Clone)]
pub struct PrivateCa {
    /// The CA's certificate (install this on the phone).
    pub ca_cert: String,
    /// The CA's key (keep it; it signs renewals).
    pub ca_key: String,
    /// The server's certificate for the names given.
    pub cert: String,
    /// The server's key.
    pub key: String,
    /// SHA-256 of the CA certificate (DER), as colon-separated hex.
    pub ca_fingerprint: String,
}

/// Why a private CA cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make the certificates: {0}")]
pub struct CaError(String);

/// Makes a CA (10 years) and a server certificate (397 days) for `names`
/// (host names or IP addresses the phone uses to reach the server).
pub fn private_ca(names: &[String]) -> Result<PrivateCa, CaError> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use sha2::{Digest, Sha256};
    let error = |e: rcgen::Error| CaError(e.to_string());
    if names.is_empty() {
        return Err(CaError(
            "name at least one host name or address the phone uses, e.g. --name myhost.lan".into(),
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Push Pals private CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::days(1);
    ca_params.not_after = now + time::Duration::days(3650);
    let ca_key = KeyPair::generate().map_err(error)?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(error)?;

    let mut params = CertificateParams::new(names.to_vec()).map_err(error)?;
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].clone());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(397);
    let key = KeyPair::generate().map_err(error)?;
    let cert = params.signed_by(&key, &ca).map_err(error)?;
    let fingerprint = Sha256::digest(ca.der().as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(PrivateCa {
        ca_cert: ca.pem(),
        ca_key: ca_key_pem,
        cert: cert.pem(),
        key: key.serialize_pem(),
        ca_fingerprint: fingerprint,
    })
}

/// The SHA-256 fingerprint (colon-separated hex) of the first certificate
/// in a PEM file.
pub fn fingerprint(pem_file: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    let der = CertificateDer::pem_file_iter(pem_file).ok()?.next()?.ok()?;
    Some(
        Sha256::digest(der.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}
