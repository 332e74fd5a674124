//! Is the orchestrator ready to take work? The database takes a write, the
//! sandbox runs a command, and the disk has room.

use crate::orchestrator::Orchestrator;
use pushpals_sandbox::CommandSpec;
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Free space under which the server is not ready, unless configured.
const DEFAULT_MIN_FREE_MIB: u64 = 256;
/// How long a sandbox probe's answer is reused: readiness probes come
/// every few seconds and a sandbox start costs a few milliseconds.
const SANDBOX_PROBE_TTL: Duration = Duration::from_secs(30);

/// One readiness condition.
#[derive(Debug, Clone, Serialize)]
pub struct ReadyCheck {
    /// `database`, `sandbox` or `disk`.
    pub name: &'static str,
    /// Whether it holds.
    pub ok: bool,
    /// What was found, or why it does not hold and what to do.
    pub detail: String,
}

/// The answer of a readiness probe.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// Every check holds.
    pub ready: bool,
    /// Each condition.
    pub checks: Vec<ReadyCheck>,
}

/// The last sandbox probe: when, and how long the probe command took (or
/// why it did not run).
/// The last sandbox probe's outcome and when it was made.
#[derive(Default)]
pub(crate) struct SandboxProbe(Mutex<Option<(Instant, Result<Duration, String>)>>);

impl SandboxProbe {
    /// The last outcome, when it is younger than `ttl`.
    fn fresh(&self, ttl: Duration) -> Option<Result<Duration, String>> {
        self.0
            .lock()
            .ok()
            .and_then(|probe| probe.clone())
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, outcome)| outcome)
    }

    /// Keeps an outcome just measured.
    fn keep(&self, outcome: &Result<Duration, String>) {
        if let Ok(mut probe) = self.0.lock() {
            *probe = Some((Instant::now(), outcome.clone()));
        }
    }
}

impl Orchestrator {
    /// Checks the database, the sandbox and the disk.
    pub async fn readiness(&self) -> Readiness {
        let checks = vec![
            self.database_ready().await,
            self.sandbox_ready().await,
            self.disk_ready(),
        ];
        Readiness {
            ready: checks.iter().all(|c| c.ok),
            checks,
        }
    }

    fn data_dir(&self) -> &Path {
        self.worktrees_dir.parent().unwrap_or(Path::new("."))
    }

    async fn database_ready(&self) -> ReadyCheck {
        // A transaction through the single writer: the writer thread is
        // alive, takes the write lock and commits.
        let result = self.store.write(|tx| tx.touch_readiness()).await;
        ReadyCheck {
            name: "database",
            ok: result.is_ok(),
            detail: match result {
                Ok(()) => "takes writes".into(),
                Err(error) => format!("cannot write: {error}"),
            },
        }
    }

    /// How long a `true` takes in the sandbox, start to end (probed at
    /// most every 30 seconds); `None` when the sandbox cannot run it.
    pub async fn sandbox_start_time(&self) -> Option<Duration> {
        self.sandbox_probe_outcome().await.ok()
    }

    async fn sandbox_probe_outcome(&self) -> Result<Duration, String> {
        match self.sandbox_probe.fresh(SANDBOX_PROBE_TTL) {
            Some(outcome) => outcome,
            None => {
                let outcome = self.probe_sandbox().await;
                self.sandbox_probe.keep(&outcome);
                outcome
            }
        }
    }

    async fn sandbox_ready(&self) -> ReadyCheck {
        let outcome = self.sandbox_probe_outcome().await;
        ReadyCheck {
            name: "sandbox",
            ok: outcome.is_ok(),
            detail: match outcome {
                Ok(took) => format!(
                    "{} runs commands (a probe took {} ms)",
                    self.runner.backend(),
                    took.as_millis()
                ),
                Err(why) => why,
            },
        }
    }

    async fn probe_sandbox(&self) -> Result<Duration, String> {
        let dir = self.data_dir().join("ready-probe");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot make the probe directory: {e}"))?;
        let spec = CommandSpec {
            command_line: "true".into(),
            cwd: dir,
            timeout: Duration::from_secs(20),
            env: Vec::new(),
            read_only_paths: Vec::new(),
            network_proxy: None,
            gateway: None,
            home: None,
            session: None,
            alias: None,
        };
        let (output, mut drained) = mpsc::channel(4);
        let (_cancel, cancelled) = watch::channel(false);
        let drain = tokio::spawn(async move { while drained.recv().await.is_some() {} });
        let started = Instant::now();
        let result = self.runner.run(spec, output, cancelled).await;
        let took = started.elapsed();
        drain.abort();
        match result {
            Ok(outcome) if outcome.exit_code == Some(0) => Ok(took),
            Ok(outcome) => Err(format!(
                "a probe command in the {} sandbox {}; run `pushpals doctor`",
                self.runner.backend(),
                outcome.describe()
            )),
            Err(error) => Err(format!(
                "the {} sandbox cannot start a command: {error}; run `pushpals doctor`",
                self.runner.backend()
            )),
        }
    }

    fn disk_ready(&self) -> ReadyCheck {
        let min_mib = self
            .settings()
            .server
            .ready_min_free_mib
            .unwrap_or(DEFAULT_MIN_FREE_MIB);
        match rustix::fs::statvfs(self.data_dir()) {
            Ok(stat) => {
                let free_mib = stat.f_bavail.saturating_mul(stat.f_frsize) >> 20;
                let ok = free_mib >= min_mib;
                ReadyCheck {
                    name: "disk",
                    ok,
                    detail: if ok {
                        format!("{free_mib} MiB free")
                    } else {
                        format!(
                            "only {free_mib} MiB free, under the {min_mib} MiB minimum: \
                             free space (`pushpals gc`, `pushpals du`) or lower \
                             [server] ready_min_free_mib"
                        )
                    },
                }
            }
            Err(error) => ReadyCheck {
                name: "disk",
                ok: false,
                detail: format!("cannot read the free space: {error}"),
            },
        }
    }
}
