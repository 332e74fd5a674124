//! A worker host's cache of a repository's history, so a run's base comes
//! as a thin bundle: the worker names the bases it already holds, the
//! server bundles only what is new since them (or nothing, when the base
//! is one of them or older), the worker fetches that into its cache and
//! clones the run from there.
//!
//! The cache is a bare repository of the worker's own, one per served
//! repository; each base it took is kept under `refs/pushpals/bases/`,
//! the newest [`KEPT_BASES`] of them.

use crate::error::{GitError, GitResult};
use crate::git::{git, run, run_text};
use crate::repo::Repo;
use std::path::Path;

/// How many bases a worker's cache keeps (and names when it asks).
pub const KEPT_BASES: usize = 16;

/// Where a cache keeps the bases it took.
const BASES: &str = "refs/pushpals/bases/";

/// Whether `text` looks like a full commit id (SHA-1 or SHA-256).
pub fn is_commit_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Repo {
    /// Writes a bundle of the worktree's `HEAD` to `into` without what
    /// `haves` (commit ids a worker holds) already bring. `false`, and no
    /// bundle, when `HEAD` is one of them or older than one: the worker
    /// has it. Ids this repository does not know are passed over.
    pub async fn bundle_head_since(
        &self,
        worktree: &Path,
        into: &Path,
        haves: &[String],
    ) -> GitResult<bool> {
        let known = self.known_commits(worktree, haves).await?;
        let excluded: Vec<String> = known.iter().map(|c| format!("^{c}")).collect();
        if !known.is_empty() {
            // Nothing new since them: the worker holds the base.
            let mut new = self.command(worktree);
            new.args(["rev-list", "--count", "HEAD"]).args(&excluded);
            if run_text(new, "rev-list").await? == "0" {
                return Ok(false);
            }
        }
        let mut bundle = self.command(worktree);
        bundle
            .args(["bundle", "create", "--quiet"])
            .arg(into)
            .arg("HEAD")
            .args(&excluded);
        run(bundle, "bundle create").await.map(|_| true)
    }

    /// Those of `ids` that are commits of this repository (one git call).
    async fn known_commits(&self, worktree: &Path, ids: &[String]) -> GitResult<Vec<String>> {
        let ids: Vec<&String> = ids.iter().filter(|h| is_commit_id(h)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut check = self.command(worktree);
        check
            .args(["cat-file", "--batch-check=%(objecttype) %(objectname)"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = check.spawn().map_err(GitError::Spawn)?;
        let input: String = ids.iter().map(|id| format!("{id}\n")).collect();
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(input.as_bytes())
                .await
                .map_err(|source| GitError::Io {
                    context: "cannot ask git which commits it has".into(),
                    source,
                })?;
        }
        let output = child.wait_with_output().await.map_err(GitError::Spawn)?;
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.strip_prefix("commit "))
            .filter(|id| is_commit_id(id))
            .map(str::to_owned)
            .collect())
    }
}

/// The bases a worker's cache holds, the one it took last first (none
/// when there is no cache yet).
pub async fn cached_bases(cache: &Path) -> Vec<String> {
    let mut bases: Vec<String> = Vec::new();
    for (_, base) in base_refs(cache).await {
        if !bases.contains(&base) {
            bases.push(base);
        }
    }
    bases
}

/// The cache's base refs, newest first: each is named by when it was
/// taken (`<millis>-<commit>`).
async fn base_refs(cache: &Path) -> Vec<(String, String)> {
    if !cache.join("HEAD").is_file() {
        return Vec::new();
    }
    let mut list = git(cache, &[]);
    list.args([
        "for-each-ref",
        "--sort=-refname",
        "--format=%(refname) %(objectname)",
        BASES,
    ]);
    match run_text(list, "for-each-ref").await {
        Ok(text) => text
            .lines()
            .filter_map(|line| line.split_once(' '))
            .filter(|(_, id)| is_commit_id(id))
            .map(|(name, id)| (name.to_owned(), id.to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Takes a bundle the server sent for `base` into the cache (made when
/// missing), keeping the newest [`KEPT_BASES`] bases.
pub async fn cache_bundle(cache: &Path, bundle: &Path, base: &str) -> GitResult<()> {
    if !is_commit_id(base) {
        return Err(not_a_commit(base));
    }
    if !cache.join("HEAD").is_file() {
        let parent = cache.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent).map_err(|source| GitError::Io {
            context: format!("cannot make {}", parent.display()),
            source,
        })?;
        let mut init = git(parent, &[]);
        init.args(["init", "--quiet", "--bare"]).arg(cache);
        run(init, "init").await?;
    }
    let taken = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut fetch = git(cache, &[]);
    fetch
        .args(["fetch", "--quiet", "--no-tags"])
        .arg(bundle)
        .arg(format!("HEAD:{BASES}{taken:020}-{base}"));
    run(fetch, "fetch").await?;
    let refs = base_refs(cache).await;
    let mut kept = Vec::new();
    for (name, id) in refs {
        if kept.len() < KEPT_BASES && !kept.contains(&id) {
            kept.push(id);
            continue;
        }
        let mut delete = git(cache, &[]);
        delete.args(["update-ref", "-d", &name]);
        run(delete, "update-ref").await?;
    }
    // Each fetch adds a pack: git packs them together, and drops what no
    // kept base needs, once there are enough to be worth it.
    let mut tidy = git(cache, &[]);
    tidy.args(["gc", "--auto", "--quiet"]);
    run(tidy, "gc").await.map(|_| ())
}

/// Clones the cache into `dir` (which must not exist) and checks out
/// `base` detached: a worker's copy of a run's base. The clone's objects
/// are hard links to the cache's, not shared with it: pruning the cache
/// cannot break a clone.
pub async fn clone_cached(cache: &Path, dir: &Path, base: &str) -> GitResult<()> {
    if !is_commit_id(base) {
        return Err(not_a_commit(base));
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let mut clone = git(parent, &[]);
    clone
        .args(["clone", "--quiet", "--local", "--no-checkout"])
        .arg(cache)
        .arg(dir);
    run(clone, "clone").await?;
    let mut checkout = git(dir, &[]);
    checkout.args(["checkout", "--quiet", "--detach", base]);
    run(checkout, "checkout").await.map(|_| ())
}

fn not_a_commit(text: &str) -> GitError {
    GitError::Failed {
        command: "clone".into(),
        status: "refused".into(),
        stderr: format!("{text:?} is not a commit id"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_shell::sh;

    const COMMIT: &str = "git -c user.name=t -c user.email=t@t commit -q";

    #[tokio::test]
    async fn a_worker_that_holds_an_older_base_gets_only_what_is_new() {
        let temp = tempfile::tempdir().unwrap();
        let origin = temp.path().join("origin");
        std::fs::create_dir(&origin).unwrap();
        sh(
            &origin,
            &format!(
                "git init -q -b main && head -c 200000 /dev/urandom > big.bin && git add . \
                 && {COMMIT} -m first"
            ),
        );
        let repo = Repo::open(&origin).await.unwrap();
        let first = repo.head_commit().await.unwrap();
        let cache = temp.path().join("worker/cache/origin.git");
        assert!(cached_bases(&cache).await.is_empty());
        std::fs::create_dir_all(temp.path().join("runs")).unwrap();

        // The first run: the whole history.
        let full = temp.path().join("full.bundle");
        assert!(repo.bundle_head_since(&origin, &full, &[]).await.unwrap());
        cache_bundle(&cache, &full, &first).await.unwrap();
        assert_eq!(cached_bases(&cache).await, vec![first.clone()]);
        let one = temp.path().join("runs/one");
        clone_cached(&cache, &one, &first).await.unwrap();
        assert!(one.join("big.bin").is_file());

        // A later base: only the new commit travels.
        sh(
            &origin,
            &format!("echo more > small.txt && git add . && {COMMIT} -m second"),
        );
        let second = repo.head_commit().await.unwrap();
        let thin = temp.path().join("thin.bundle");
        let haves = cached_bases(&cache).await;
        assert!(
            repo.bundle_head_since(&origin, &thin, &haves)
                .await
                .unwrap()
        );
        let (full_size, thin_size) = (
            std::fs::metadata(&full).unwrap().len(),
            std::fs::metadata(&thin).unwrap().len(),
        );
        assert!(
            thin_size * 20 < full_size,
            "{thin_size} against {full_size}"
        );
        cache_bundle(&cache, &thin, &second).await.unwrap();
        let two = temp.path().join("runs/two");
        clone_cached(&cache, &two, &second).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(two.join("small.txt")).unwrap(),
            "more\n"
        );
        assert_eq!(cached_bases(&cache).await[0], second);

        // A base the worker holds, or one older than it: nothing to send.
        let none = temp.path().join("none.bundle");
        let haves = vec![second.clone()];
        assert!(
            !repo
                .bundle_head_since(&origin, &none, &haves)
                .await
                .unwrap()
        );
        sh(&origin, &format!("git checkout -q --detach {first}"));
        assert!(
            !repo
                .bundle_head_since(&origin, &none, &haves)
                .await
                .unwrap()
        );
        assert!(!none.exists());
        // Ids it does not know, or that are not ids, are passed over.
        let odd = vec!["ab".repeat(20), "--output=/tmp/x".into()];
        sh(&origin, "git checkout -q main");
        assert!(repo.bundle_head_since(&origin, &none, &odd).await.unwrap());
        assert!(
            clone_cached(&cache, &temp.path().join("runs/x"), "--help")
                .await
                .is_err()
        );
        assert!(cache_bundle(&cache, &none, "HEAD").await.is_err());
    }

    #[tokio::test]
    async fn the_cache_keeps_only_its_newest_bases() {
        let temp = tempfile::tempdir().unwrap();
        let origin = temp.path().join("origin");
        std::fs::create_dir(&origin).unwrap();
        sh(
            &origin,
            &format!("git init -q -b main && {COMMIT} --allow-empty -m root"),
        );
        let repo = Repo::open(&origin).await.unwrap();
        let cache = temp.path().join("cache.git");
        for n in 0..(KEPT_BASES + 2) {
            sh(
                &origin,
                &format!(
                    "echo {n} > n.txt && git add . && {COMMIT} -q -m c{n} --date='@{}'",
                    1_700_000_000 + n * 60
                ),
            );
            let head = repo.head_commit().await.unwrap();
            let bundle = temp.path().join(format!("{n}.bundle"));
            let haves = cached_bases(&cache).await;
            assert!(
                repo.bundle_head_since(&origin, &bundle, &haves)
                    .await
                    .unwrap()
            );
            cache_bundle(&cache, &bundle, &head).await.unwrap();
        }
        let kept = cached_bases(&cache).await;
        assert_eq!(kept.len(), KEPT_BASES);
        assert_eq!(kept[0], repo.head_commit().await.unwrap());
    }
}
