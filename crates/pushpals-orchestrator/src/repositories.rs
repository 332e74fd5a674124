//! The repositories the orchestrator serves, each with the state it owns:
//! its checkout, warm caches and base fetches, and the credential its clone
//! URL carried (in memory only). Registering and removing them is in
//! `repo_admin`.

use crate::base_fetch::BaseFetches;
use crate::error::{OrchestratorError, OrchestratorResult};
use crate::warm_cache::WarmCaches;
use pushpals_store::{RepositoryRecord, StoreError};
use pushpals_workspace::{HttpCredential, Repo};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One served repository.
pub struct ServedRepo {
    /// What the store holds about it.
    pub record: RepositoryRecord,
    /// Its checkout.
    pub repo: Repo,
    /// How its tasks' worktrees are made, in words (`serve` says it).
    pub task_start: String,
    pub(crate) caches: WarmCaches,
    pub(crate) base_fetches: BaseFetches,
    /// The credential its clone URL carried; never written anywhere.
    pub(crate) credential: Option<HttpCredential>,
}

impl ServedRepo {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Whether a credential from its clone URL is held (for this server's
    /// life).
    pub fn holds_credential(&self) -> bool {
        self.credential.is_some()
    }
}

impl std::fmt::Debug for ServedRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedRepo")
            .field("name", &self.record.name)
            .field("path", &self.record.path)
            .finish()
    }
}

/// The served repositories by name, and those registered that cannot be
/// opened (with why).
#[derive(Default)]
pub struct Repositories {
    served: RwLock<BTreeMap<String, Arc<ServedRepo>>>,
    unavailable: RwLock<BTreeMap<String, String>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Repositories {
    /// The repository of that name.
    pub fn get(&self, name: &str) -> Option<Arc<ServedRepo>> {
        read(&self.served).get(name).cloned()
    }

    /// Every served repository, by name.
    pub fn all(&self) -> Vec<Arc<ServedRepo>> {
        read(&self.served).values().cloned().collect()
    }

    /// The registered repositories that could not be opened, with why.
    pub fn unavailable(&self) -> Vec<(String, String)> {
        read(&self.unavailable)
            .iter()
            .map(|(name, why)| (name.clone(), why.clone()))
            .collect()
    }

    /// The served repository of that name, or why there is none.
    pub(crate) fn served(&self, name: &str) -> OrchestratorResult<Arc<ServedRepo>> {
        if let Some(served) = self.get(name) {
            if let Some(why) = gone(&served) {
                return Err(OrchestratorError::Unavailable(format!(
                    "repository {name:?} cannot be used: {why}"
                )));
            }
            return Ok(served);
        }
        match self.why_unavailable(name) {
            Some(why) => Err(OrchestratorError::Unavailable(format!(
                "repository {name:?} is registered but cannot be used: {why}"
            ))),
            None => Err(StoreError::RepositoryNotFound(name.to_owned()).into()),
        }
    }

    /// The repository a new request names, or the only one served; asks
    /// for a name when there are several.
    pub(crate) fn resolve(&self, asked: Option<&str>) -> OrchestratorResult<Arc<ServedRepo>> {
        if let Some(name) = asked {
            return self.served(name);
        }
        let all = self.all();
        match all.as_slice() {
            [only] => Ok(Arc::clone(only)),
            [] => Err(OrchestratorError::InvalidInput(
                "this server has no repository yet: add one with `pushpals repo add URL|PATH`"
                    .into(),
            )),
            several => Err(OrchestratorError::InvalidInput(format!(
                "this server has several repositories ({}): say which (--repo NAME, \"repo\" in the API)",
                several
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// How many are registered: served, or not openable.
    pub fn registered(&self) -> usize {
        read(&self.served).len() + read(&self.unavailable).len()
    }

    /// Why `name` is registered but not served, if it is.
    pub fn why_unavailable(&self, name: &str) -> Option<String> {
        read(&self.unavailable).get(name).cloned()
    }

    pub(crate) fn insert(&self, served: Arc<ServedRepo>) {
        let name = served.name().to_owned();
        write(&self.unavailable).remove(&name);
        write(&self.served).insert(name, served);
    }

    pub(crate) fn mark_unavailable(&self, name: &str, why: String) {
        write(&self.served).remove(name);
        write(&self.unavailable).insert(name.to_owned(), why);
    }

    pub(crate) fn remove(&self, name: &str) -> Option<Arc<ServedRepo>> {
        write(&self.unavailable).remove(name);
        write(&self.served).remove(name)
    }
}

/// Why a served repository's checkout cannot be used any more (deleted or
/// moved under the running server), if so.
pub(crate) fn gone(served: &ServedRepo) -> Option<String> {
    (!served.repo.root().join(".git").exists()).then(|| {
        format!(
            "its checkout {} is gone: put it back, or `pushpals repo rm {}`",
            served.repo.root().display(),
            served.name()
        )
    })
}

/// Whether `name` can name a repository: 1 to 64 of letters, digits, `.`,
/// `_` and `-`, not starting with `.` or `-` (it becomes part of paths and
/// is typed in chat).
pub fn valid_repo_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::valid_repo_name;

    #[test]
    fn repository_names_stay_inside_their_directory_and_a_chat_line() {
        for good in ["app", "my-tool", "clsx_2", "a.b"] {
            assert!(valid_repo_name(good), "{good}");
        }
        for bad in [
            "",
            "..",
            ".hidden",
            "-x",
            "a/b",
            "a b",
            "ü",
            &"x".repeat(65),
        ] {
            assert!(!valid_repo_name(bad), "{bad}");
        }
    }
}
