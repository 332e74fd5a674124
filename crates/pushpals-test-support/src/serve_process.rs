//! A real `pushpals serve` in a process of its own, for benchmarks: its
//! data and configuration in a directory of the caller's, its API address
//! read from its banner, its admin token from the data directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The admin token.
    pub token: String,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    /// Starts `bin serve` on `repo` with `config` as its `config.toml`
    /// and `env` added to its environment; panics when it does not start.
    #[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    pub fn start(bin: &str, repo: &Path, data: &Path, config: &str, env: &[(&str, &str)]) -> Self {
        let dir = data.join("config-home/pushpals");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let mut child = Command::new(bin)
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(repo)
            .env("PUSHPALS_DATA_DIR", data)
            .env("XDG_CONFIG_HOME", data.join("config-home"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the server stopped before saying where it listens")
                .unwrap();
            if let Some(rest) = line.trim().strip_prefix("API:") {
                let address = rest.split_whitespace().next().unwrap();
                break address.trim_end_matches("/api/v1/").to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        let token = std::fs::read_to_string(data.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        Self { child, url, token }
    }
}
