//! Where things live by default.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set: pass --data-dir (or set XDG_DATA_HOME)")
}

/// `--data-dir`, else `$XDG_DATA_HOME/pushpals`, else
/// `~/.local/share/pushpals`; made absolute against the directory the
/// command started in, since tasks run in other directories.
pub fn data_dir(given: Option<&Path>) -> Result<PathBuf> {
    let dir = if let Some(dir) = given {
        dir.to_path_buf()
    } else if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        PathBuf::from(xdg).join("pushpals")
    } else {
        home()?.join(".local/share/pushpals")
    };
    absolute(&dir)
}

/// `path` made absolute against the current directory.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .with_context(|| format!("cannot make {} an absolute path", path.display()))
}

/// `--config`, else `$XDG_CONFIG_HOME/pushpals/config.toml`, else
/// `~/.config/pushpals/config.toml`.
pub fn config_file(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(file) = given {
        return absolute(file);
    }
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("pushpals/config.toml"));
    }
    Ok(home()?.join(".config/pushpals/config.toml"))
}
