//! `tls init`: a private CA and a server certificate for a LAN or VPN.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes a file that must not exist yet, with `mode`.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Makes the CA and the certificate in `dir`; never overwrites.
pub fn init(names: &[String], dir: &Path) -> Result<()> {
    let files = ["ca.pem", "ca-key.pem", "cert.pem", "key.pem"].map(|f| dir.join(f));
    if let Some(existing) = files.iter().find(|f| f.exists()) {
        bail!(
            "{} exists already; nothing was changed. Move the old files away (or use --out) to make new ones",
            existing.display()
        );
    }
    let made = pushpals_server::tls::private_ca(names)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_new(&files[0], &made.ca_cert, 0o644)?;
    write_new(&files[1], &made.ca_key, 0o600)?;
    write_new(&files[2], &made.cert, 0o644)?;
    write_new(&files[3], &made.key, 0o600)?;
    say!(
        "Made a private CA and a certificate for {} in {}.",
        names.join(", "),
        dir.display()
    );
    say!();
    say!("Add to config.toml, then restart `pushpals serve` on an address the phone reaches:");
    say!();
    say!("[tls]");
    say!("cert = \"{}\"", files[2].display());
    say!("key = \"{}\"", files[3].display());
    say!("ca = \"{}\"", files[0].display());
    say!();
    say!("CA fingerprint (SHA-256): {}", made.ca_fingerprint);
    say!("`pushpals pair` shows how to install the CA on the phone. Keep ca-key.pem private.");
    Ok(())
}
