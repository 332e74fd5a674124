//! Registering, opening, listing and removing repositories.
//!
//! A clone is made into a directory of its own under `repos/` and renamed
//! into place only when whole; it is recorded in the store after that, so a
//! stop at any point leaves either nothing or a whole, registered clone (a
//! leftover directory nobody registered is swept at the next start). A
//! token in a clone URL is kept in memory for this server's life: never in
//! the store, the clone's config, an event or a log.
//!
//! Over 400 lines: a repository's whole life (add by clone or in place, open, list, remove) is one
//! story whose failure paths must each leave nothing behind; the tests are elsewhere.

use crate::error::{OrchestratorError, OrchestratorResult};
use crate::orchestrator::Orchestrator;
use crate::repositories::{ServedRepo, valid_repo_name};
use pushpals_core::Actor;
use pushpals_store::{NewRepository, RepositoryRecord, StoreError};
use pushpals_workspace::clone::{clone_into, valid_branch_name};
use pushpals_workspace::{GitError, HttpCredential, Overlays, RemoteUrl, Repo};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A request to register a repository.
#[derive(Debug, Clone, Default)]
pub struct AddRepository {
    /// A URL to clone, or the absolute path of a local checkout to use in
    /// place.
    pub source: String,
    /// Its name here; by default the URL's or directory's last part.
    pub name: Option<String>,
    /// Its base branch; by default the remote's default (or the checkout's
    /// current branch).
    pub branch: Option<String>,
}

/// A repository as `repo list` shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RepositoryView {
    /// Its name.
    pub name: String,
    /// Its checkout.
    pub path: String,
    /// The URL it was cloned from (no credentials); absent for a local
    /// checkout used in place.
    pub origin: Option<String>,
    /// The base branch tasks start from.
    pub branch: Option<String>,
    /// When the base was last fetched (RFC 3339), if ever.
    pub last_fetch: Option<String>,
    /// Its tasks, all told.
    pub tasks: u64,
    /// Its tasks that are queued, under way, waiting or interrupted.
    pub busy_tasks: u64,
    /// Its open findings.
    pub open_findings: u64,
    /// Why it cannot be served now (its checkout is gone, say).
    pub problem: Option<String>,
    /// Whether a credential from its clone URL is held in memory.
    pub credential_in_memory: bool,
}

/// Name of the directory under a repository's home that holds its clone.
const CHECKOUT: &str = "checkout";

impl Orchestrator {
    /// Opens every registered repository; one that cannot be opened is
    /// listed with why, and its tasks fail saying so. Sweeps clones a stop
    /// cut short.
    pub(crate) async fn load_repositories(&self) -> OrchestratorResult<()> {
        let records = self.store.repositories().await?;
        for record in &records {
            match self.open_served(record.clone(), None).await {
                Ok(served) => self.repos.insert(served),
                Err(why) => {
                    tracing::warn!(repo = %record.name, %why, "a registered repository cannot be opened");
                    self.repos.mark_unavailable(&record.name, why);
                }
            }
        }
        let homes: Vec<PathBuf> = records.iter().map(|r| PathBuf::from(&r.home)).collect();
        if let Ok(entries) = std::fs::read_dir(self.data_dir.join("repos")) {
            for entry in entries.flatten() {
                let path = entry.path();
                if !homes.contains(&path) {
                    tracing::warn!(path = %path.display(), "removing a repository directory nobody registered (a stop cut its clone short)");
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
        }
        Ok(())
    }

    /// Opens a registered repository with its own caches and overlays.
    async fn open_served(
        &self,
        record: RepositoryRecord,
        credential: Option<HttpCredential>,
    ) -> Result<Arc<ServedRepo>, String> {
        let repo = Repo::open(Path::new(&record.path))
            .await
            .map_err(|e| format!("its checkout cannot be opened: {e}"))?;
        let home = PathBuf::from(&record.home);
        let (repo, task_start) = match Overlays::probe(&home) {
            Ok(overlays) => (
                repo.with_overlays(overlays),
                "an overlay over a shared checkout of the base commit".to_owned(),
            ),
            Err(reason) => (repo, format!("a full checkout (no overlay: {reason})")),
        };
        Ok(Arc::new(ServedRepo {
            caches: crate::warm_cache::WarmCaches::new(home.join("caches")),
            base_fetches: crate::base_fetch::BaseFetches::default(),
            record,
            repo,
            task_start,
            credential,
        }))
    }

    /// Registers a repository: clones a URL into the data directory, or
    /// uses an existing local checkout in place.
    pub async fn add_repository(
        &self,
        request: AddRepository,
        actor: Actor,
    ) -> OrchestratorResult<Arc<ServedRepo>> {
        if let Some(branch) = &request.branch
            && !valid_branch_name(branch)
        {
            return Err(OrchestratorError::InvalidInput(format!(
                "{branch:?} is not a branch name git accepts"
            )));
        }
        let source = request.source.trim();
        let local = Path::new(source);
        if local.is_absolute() && local.exists() {
            let repo = Repo::open(local).await?;
            if let Some(branch) = &request.branch
                && repo.branch_commit(branch).await?.is_none()
            {
                return Err(OrchestratorError::InvalidInput(format!(
                    "{} has no branch {branch:?}: leave out --branch to use its current branch",
                    repo.root().display()
                )));
            }
            return self
                .register_local(repo, request.name, request.branch, actor)
                .await;
        }
        if local.is_absolute() {
            return Err(OrchestratorError::InvalidInput(format!(
                "{source} does not exist: give the path of a git checkout, or a URL to clone"
            )));
        }
        let url =
            RemoteUrl::parse(source).map_err(|e| OrchestratorError::InvalidInput(e.to_string()))?;
        let name = match request.name {
            Some(name) => name,
            None => url.default_name().ok_or_else(|| {
                OrchestratorError::InvalidInput(format!(
                    "no name can be taken from {}: pass --name",
                    url.as_str()
                ))
            })?,
        };
        self.check_name_free(&name).await?;
        let home = self.new_home(&name)?;
        let checkout = home.join(CHECKOUT);
        let staging = home.join(format!("{CHECKOUT}.partial"));
        let cloned = clone_into(&url, &staging, request.branch.as_deref()).await;
        let result = match cloned {
            Ok(_) => std::fs::rename(&staging, &checkout).map_err(|e| {
                OrchestratorError::Internal(format!("cannot move the clone into place: {e}"))
            }),
            Err(GitError::Clone { url, problem }) => Err(OrchestratorError::Remote(format!(
                "cannot clone {url}: {problem}"
            ))),
            Err(other) => Err(other.into()),
        };
        if let Err(error) = result {
            let _ = std::fs::remove_dir_all(&home);
            return Err(error);
        }
        let new = NewRepository {
            name: &name,
            path: &checkout.to_string_lossy(),
            origin: Some(url.as_str()),
            branch: request.branch.as_deref(),
            home: &home.to_string_lossy(),
        };
        let (new_name, path, origin, branch, home_text) = (
            new.name.to_owned(),
            new.path.to_owned(),
            new.origin.map(str::to_owned),
            new.branch.map(str::to_owned),
            new.home.to_owned(),
        );
        let recorded = self
            .store
            .write(move |tx| {
                tx.add_repository(
                    &NewRepository {
                        name: &new_name,
                        path: &path,
                        origin: origin.as_deref(),
                        branch: branch.as_deref(),
                        home: &home_text,
                    },
                    actor,
                )
            })
            .await;
        self.finish_registration(recorded, &home, url.credential().cloned())
            .await
    }

    /// Opens and serves a repository just recorded; when recording failed,
    /// removes the directory made for it. A repository that took over the
    /// data dir as its home leaves the directory made for it unused: it
    /// goes too.
    async fn finish_registration(
        &self,
        recorded: Result<RepositoryRecord, StoreError>,
        home: &Path,
        credential: Option<HttpCredential>,
    ) -> OrchestratorResult<Arc<ServedRepo>> {
        let record = match recorded {
            Ok(record) => record,
            Err(error) => {
                let _ = std::fs::remove_dir_all(home);
                return Err(error.into());
            }
        };
        if Path::new(&record.home) != home {
            let _ = std::fs::remove_dir_all(home);
        }
        let served = self
            .open_served(record, credential)
            .await
            .map_err(OrchestratorError::Internal)?;
        self.repos.insert(Arc::clone(&served));
        Ok(served)
    }

    /// Registers a local checkout in place under `name` (by default its
    /// directory's name). The first repository registered in a data
    /// directory an older server wrote keeps that directory's caches and
    /// overlays, and takes over its tasks, grants and findings.
    async fn register_local(
        &self,
        repo: Repo,
        name: Option<String>,
        branch: Option<String>,
        actor: Actor,
    ) -> OrchestratorResult<Arc<ServedRepo>> {
        let name = match name {
            Some(name) => name,
            None => default_local_name(repo.root())?,
        };
        self.check_name_free(&name).await?;
        let home = self.new_home(&name)?;
        let path = repo.root().to_string_lossy().into_owned();
        let data_dir = self.data_dir.to_string_lossy().into_owned();
        let (new_name, home_text) = (name.clone(), home.to_string_lossy().into_owned());
        let recorded = self
            .store
            .write(move |tx| {
                let home = if tx.has_unowned_rows()? {
                    data_dir
                } else {
                    home_text
                };
                tx.add_repository(
                    &NewRepository {
                        name: &new_name,
                        path: &path,
                        origin: None,
                        branch: branch.as_deref(),
                        home: &home,
                    },
                    actor,
                )
            })
            .await;
        self.finish_registration(recorded, &home, None).await
    }

    /// `serve --repo PATH`: the repository registered at that checkout, or
    /// that checkout registered under its directory's name (with `-2`,
    /// `-3` ... when the name is taken by another checkout).
    pub(crate) async fn ensure_local_repository(
        &self,
        repo: Repo,
    ) -> OrchestratorResult<Arc<ServedRepo>> {
        let root = repo.root().to_string_lossy().into_owned();
        if let Some(served) = self.repos.all().into_iter().find(|s| s.record.path == root) {
            return Ok(served);
        }
        let base = default_local_name(repo.root())?;
        let mut attempt = 1;
        loop {
            let name = if attempt == 1 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            match self
                .register_local(repo.clone(), Some(name), None, Actor::Orchestrator)
                .await
            {
                Err(OrchestratorError::Store(StoreError::Duplicate(_))) if attempt < 50 => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Takes a repository off the server: refused while it has tasks that
    /// need it. A clone in the data directory is deleted; a local checkout
    /// is left as it is.
    pub async fn remove_repository(
        &self,
        name: &str,
        actor: Actor,
    ) -> OrchestratorResult<RepositoryRecord> {
        let known = self.store.repositories().await?;
        let Some(record) = known.into_iter().find(|r| r.name == name) else {
            return Err(StoreError::RepositoryNotFound(name.to_owned()).into());
        };
        let busy = self.store.busy_tasks(name).await?;
        if !busy.is_empty() {
            return Err(StoreError::RepositoryBusy {
                name: name.to_owned(),
                tasks: busy,
            }
            .into());
        }
        // Its ended tasks' worktrees go first (their history stays); a
        // checkout that is gone leaves nothing of git's to clean.
        if self.served(name).is_ok() {
            for task in self.store.tasks(None).await? {
                if task.repo == name && task.worktree_path.is_some() {
                    self.remove_task(&task.id, actor.clone()).await?;
                }
            }
        }
        let owns_home = Path::new(&record.home) != self.data_dir;
        let deletes_clone = record.is_clone();
        let removed_name = name.to_owned();
        let removed = self
            .store
            .write(move |tx| tx.remove_repository(&removed_name, deletes_clone, actor))
            .await?;
        self.repos.remove(name);
        if owns_home {
            let home = PathBuf::from(&removed.home);
            if let Err(error) = std::fs::remove_dir_all(&home) {
                tracing::warn!(%error, path = %home.display(), "cannot remove a repository's directory");
            }
        }
        Ok(removed)
    }

    /// The registered repositories, with their counts.
    pub async fn repository_views(&self) -> OrchestratorResult<Vec<RepositoryView>> {
        let records = self.store.repositories().await?;
        let tasks = self.store.tasks(None).await?;
        let findings = self
            .store
            .findings(pushpals_store::findings::FindingFilter {
                state: Some("open".into()),
                ..Default::default()
            })
            .await?;
        let mut views = Vec::new();
        for record in records {
            let served = self.repos.get(&record.name);
            let branch = match &served {
                Some(served) => self.delivery.base_branch_of(served).await.ok().flatten(),
                None => record.branch.clone(),
            };
            let last_fetch = served.as_ref().and_then(|s| last_fetch_time(&s.repo));
            let mine = tasks.iter().filter(|t| t.repo == record.name);
            let busy = self.store.busy_tasks(&record.name).await?.len() as u64;
            views.push(RepositoryView {
                tasks: mine.count() as u64,
                busy_tasks: busy,
                open_findings: findings.iter().filter(|f| f.repo == record.name).count() as u64,
                problem: self
                    .repos
                    .why_unavailable(&record.name)
                    .or_else(|| served.as_ref().and_then(|s| crate::repositories::gone(s))),
                credential_in_memory: served.as_ref().is_some_and(|s| s.holds_credential()),
                last_fetch,
                branch,
                name: record.name,
                path: record.path,
                origin: record.origin,
            });
        }
        Ok(views)
    }

    /// The served repository of that name, or why there is none.
    pub(crate) fn served(&self, name: &str) -> OrchestratorResult<Arc<ServedRepo>> {
        self.repos.served(name)
    }

    /// The repository a new request names, or the only one served; asks
    /// for a name when there are several.
    pub fn resolve_repo(&self, asked: Option<&str>) -> OrchestratorResult<Arc<ServedRepo>> {
        self.repos.resolve(asked)
    }

    async fn check_name_free(&self, name: &str) -> OrchestratorResult<()> {
        if !valid_repo_name(name) {
            return Err(OrchestratorError::InvalidInput(format!(
                "{name:?} cannot name a repository: use 1 to 64 letters, digits, '.', '_' or '-', \
                 not starting with '.' or '-' (--name)"
            )));
        }
        if let Some(existing) = self
            .store
            .repositories()
            .await?
            .into_iter()
            .find(|r| r.name == name)
        {
            return Err(StoreError::Duplicate(format!(
                "a repository named {name:?} is already registered ({}): pick another with --name",
                existing.origin.unwrap_or(existing.path)
            ))
            .into());
        }
        Ok(())
    }

    /// A fresh directory for a repository under `repos/`.
    fn new_home(&self, name: &str) -> OrchestratorResult<PathBuf> {
        let id = crate::orchestrator::new_task_id()?;
        let suffix: String = id.as_str().chars().rev().take(8).collect();
        let home = self.data_dir.join("repos").join(format!("{name}-{suffix}"));
        std::fs::create_dir_all(&home).map_err(|e| {
            OrchestratorError::Internal(format!("cannot make {}: {e}", home.display()))
        })?;
        Ok(home)
    }
}

/// A local checkout's default name: its directory's name, when that can
/// name a repository.
fn default_local_name(root: &Path) -> OrchestratorResult<String> {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if valid_repo_name(&name) {
        Ok(name)
    } else {
        Err(OrchestratorError::InvalidInput(format!(
            "{} cannot give a repository name: pass --name",
            root.display()
        )))
    }
}

/// When the repository last fetched (its `FETCH_HEAD`'s time).
fn last_fetch_time(repo: &Repo) -> Option<String> {
    let dir = repo.git_common_dir()?;
    let modified = std::fs::metadata(dir.join("FETCH_HEAD"))
        .ok()?
        .modified()
        .ok()?;
    Some(pushpals_core::timestamp::format_utc(modified.into()))
}
