//! `service install|uninstall`: a hardened systemd unit running `serve`.

use crate::cli::ServiceAction;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

const UNIT_NAME: &str = "pushpals.service";

/// Where the unit file goes.
fn unit_path(system: bool) -> Result<PathBuf> {
    if system {
        return Ok(PathBuf::from("/etc/systemd/system").join(UNIT_NAME));
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config"),
    };
    Ok(config.join("systemd/user").join(UNIT_NAME))
}

/// A value for a unit file line; paths with spaces are quoted.
fn quoted(value: &str) -> String {
    if value.contains([' ', '"', '\\']) {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        value.to_owned()
    }
}

/// The unit's text.
pub fn unit_text(
    exe: &Path,
    repo: &Path,
    addr: &str,
    data_dir: Option<&Path>,
    user: Option<&str>,
    system: bool,
) -> String {
    let mut text = format!(
        "[Unit]\n\
         Description=Push Pals for {repo}\n\
         After=network-online.target\n\
         Wants=network-online.target\n\n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exe} serve --repo {repo_q} --addr {addr}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         LimitNOFILE=65536\n",
        repo = repo.display(),
        exe = quoted(&exe.display().to_string()),
        repo_q = quoted(&repo.display().to_string()),
    );
    if let Some(dir) = data_dir {
        text.push_str(&format!(
            "Environment=PUSHPALS_DATA_DIR={}\n",
            quoted(&dir.display().to_string())
        ));
    }
    if let Some(user) = user {
        text.push_str(&format!("User={user}\n"));
    }
    // Hardening that leaves the sandbox working: bubblewrap makes user
    // namespaces (no setuid needed), so no new privileges holds; the
    // service gets its own /tmp and cgroup subtree.
    text.push_str(
        "NoNewPrivileges=yes\n\
         PrivateTmp=yes\n\
         ProtectKernelModules=yes\n\
         ProtectKernelLogs=yes\n\
         ProtectClock=yes\n\
         RestrictSUIDSGID=yes\n\
         RestrictRealtime=yes\n\
         LockPersonality=yes\n\
         SystemCallArchitectures=native\n\
         UMask=0077\n\
         Delegate=yes\n\n\
         [Install]\n",
    );
    text.push_str(if system {
        "WantedBy=multi-user.target\n"
    } else {
        "WantedBy=default.target\n"
    });
    text
}

/// Runs `service install|uninstall`.
pub fn run(action: &ServiceAction, data_dir: Option<&Path>) -> Result<()> {
    match action {
        ServiceAction::Install {
            repo,
            addr,
            system,
            user,
            force,
        } => {
            if *system && user.is_none() {
                bail!("a system unit needs --user NAME: Push Pals never needs to run as root");
            }
            let repo = repo
                .canonicalize()
                .with_context(|| format!("the repository {} does not exist", repo.display()))?;
            let exe = std::env::current_exe().context("cannot find this program's path")?;
            let path = unit_path(*system)?;
            if path.exists() && !force {
                bail!(
                    "{} exists already; nothing was changed (pass --force to replace it)",
                    path.display()
                );
            }
            let parent = path.parent().context("the unit path has no directory")?;
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            let text = unit_text(&exe, &repo, addr, data_dir, user.as_deref(), *system);
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            say!("Wrote {}.", path.display());
            if *system {
                say!("Start it: systemctl daemon-reload && systemctl enable --now pushpals");
                say!("Logs:     journalctl -u pushpals -f");
            } else {
                say!(
                    "Start it: systemctl --user daemon-reload && systemctl --user enable --now pushpals"
                );
                say!("Keep it running after you log out: loginctl enable-linger $USER");
                say!("Logs:     journalctl --user -u pushpals -f");
            }
            Ok(())
        }
        ServiceAction::Uninstall { system } => {
            let path = unit_path(*system)?;
            if !path.exists() {
                bail!("there is no {}; nothing to remove", path.display());
            }
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            let scope = if *system { "" } else { "--user " };
            say!("Removed {}.", path.display());
            say!(
                "Stop it if it runs: systemctl {scope}disable --now pushpals && systemctl {scope}daemon-reload"
            );
            Ok(())
        }
    }
}
