//! A throwaway PostgreSQL cluster for tests, from Debian's packages: made
//! with `initdb` in a temporary directory the first time a test asks for a
//! database, listening on a Unix socket there only (no TCP port), run as
//! the `postgres` user when the tests run as root (PostgreSQL refuses
//! root), and killed with the test process (`setpriv --pdeathsig`). Each
//! call to [`postgres_database`] creates a new, empty database in it.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The cluster's superuser, trusted on its socket.
const SUPERUSER: &str = "pushpals";

struct Cluster {
    bin: PathBuf,
    socket_dir: PathBuf,
}

/// A new, empty database in the test cluster.
#[derive(Debug, Clone)]
pub struct PgDatabase {
    /// Its URL (`postgresql://pushpals@<socket dir>/<name>`).
    pub url: String,
    /// Its name.
    pub name: String,
    /// The directory holding the cluster's socket.
    pub socket_dir: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(1);

/// A new, empty database; the cluster starts on first use. Panics, saying
/// what to install, when PostgreSQL is not there: a test that needs it
/// must not pass without it.
pub fn postgres_database() -> PgDatabase {
    let cluster = match CLUSTER.get_or_init(start) {
        Ok(cluster) => cluster,
        Err(why) => panic!("{why}"),
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let status = Command::new(cluster.bin.join("createdb"))
        .args([
            "-h",
            &cluster.socket_dir.to_string_lossy(),
            "-U",
            SUPERUSER,
            &name,
        ])
        .status()
        .unwrap_or_else(|e| panic!("createdb did not run: {e}"));
    assert!(status.success(), "createdb {name} failed");
    let host: String = cluster
        .socket_dir
        .to_string_lossy()
        .replace('%', "%25")
        .replace('/', "%2F");
    PgDatabase {
        url: format!("postgresql://{SUPERUSER}@{host}/{name}"),
        name,
        socket_dir: cluster.socket_dir.clone(),
    }
}

/// The newest installed PostgreSQL's programs.
fn bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| no_postgres())?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(no_postgres)
}

fn no_postgres() -> String {
    "PostgreSQL is not installed, and these tests need it: `apt-get install postgresql` \
     (`.ci/run` does)"
        .into()
}

/// The uid and gid to run PostgreSQL as: the `postgres` user when we are
/// root, else nobody else (ourselves).
fn run_as() -> Option<(u32, u32)> {
    let me = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// `program` run as `user` (when given), killed when the thread that
/// started it ends.
fn command(program: &Path, user: Option<(u32, u32)>) -> Command {
    let mut command = Command::new("setpriv");
    command.arg("--pdeathsig").arg("KILL");
    if let Some((uid, gid)) = user {
        command
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups");
    }
    command.arg(program);
    command
}

/// Removes the clusters of test processes that have ended (their server
/// was killed with them, so their directories stay behind).
fn sweep_ended() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("pushpals-pg-") else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start() -> Result<Cluster, String> {
    let bin = bin_dir()?;
    sweep_ended();
    let root = std::env::temp_dir().join(format!("pushpals-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let user = run_as();
    if let Some((uid, gid)) = user {
        chown(&root, Some(uid), Some(gid))
            .map_err(|e| format!("cannot give {} to postgres: {e}", root.display()))?;
    }
    let data = root.join("data");
    let initdb = command(&bin.join("initdb"), user)
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("initdb did not run: {e}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    // The server is started by a thread that lives as long as the test
    // process, so the parent-death signal comes only when the process ends.
    let mut server = command(&bin.join("postgres"), user);
    server
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&root)
        .args(["-c", "listen_addresses=", "-c", "fsync=off"])
        .args(["-c", "max_connections=300", "-c", "shared_buffers=32MB"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let (started, outcome) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("postgres-cluster".into())
        .spawn(move || match server.spawn() {
            Ok(mut child) => {
                let _ = started.send(Ok(()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = started.send(Err(format!("postgres did not start: {e}")));
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    outcome
        .recv()
        .map_err(|_| "the cluster's thread ended".to_owned())??;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .arg("-h")
            .arg(&root)
            .args(["-U", SUPERUSER, "-q"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(Cluster {
                bin,
                socket_dir: root,
            });
        }
        if Instant::now() > deadline {
            return Err("the test PostgreSQL did not become ready within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
