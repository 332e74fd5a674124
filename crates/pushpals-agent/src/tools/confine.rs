//! Opening files beneath a task's worktree and nowhere else.
//!
//! Every open goes through `openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS` from a descriptor of the worktree, so neither `..`
//! nor a symlink (planted, or swapped in after a check) leads out: the kernel
//! refuses, not a path check followed by a plain open. Writes go to a
//! temporary file in the same directory and are renamed over the target, so
//! a hard link to an outside file is replaced, never written through, and a
//! failed write leaves the old file whole.

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// Why a path cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is not a plain relative path inside the worktree.
    #[error("{path}: {why}")]
    Refused {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// The filesystem said no.
    #[error("{path}: {why}")]
    Io {
        /// The path as given.
        path: String,
        /// What happened, in words.
        why: String,
    },
}

fn refused(path: &str, why: &str) -> PathError {
    PathError::Refused {
        path: path.to_owned(),
        why: why.to_owned(),
    }
}

fn io_error(path: &str, errno: Errno) -> PathError {
    let why = match errno {
        Errno::NOENT => "no such file or directory".to_owned(),
        Errno::XDEV => "leads outside the worktree".to_owned(),
        Errno::LOOP => {
            "is or passes through a symbolic link, which file tools do not follow".to_owned()
        }
        Errno::ISDIR => "is a directory".to_owned(),
        Errno::NOTDIR => "a part of the path is not a directory".to_owned(),
        Errno::NOSYS => {
            "the kernel lacks openat2 (Linux 5.6+), so file tools refuse to run".to_owned()
        }
        other => format!("{}", std::io::Error::from(other)),
    };
    PathError::Io {
        path: path.to_owned(),
        why,
    }
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// A worktree that file tools may touch.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens the worktree at `path`.
    pub fn open(path: &Path) -> Result<Self, PathError> {
        let shown = path.display().to_string();
        let dir = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error(&shown, e))?;
        Ok(Self {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// The worktree's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that `path` is a plain relative path that names something
    /// inside the worktree and outside git's own files; returns it cleaned
    /// (`.` parts dropped). An empty result means the worktree itself.
    pub fn relative(path: &str) -> Result<PathBuf, PathError> {
        if path.contains('\0') {
            return Err(refused(path, "contains a NUL byte"));
        }
        let mut clean = PathBuf::new();
        for component in Path::new(path).components() {
            match component {
                Component::Normal(part) if part == ".git" => {
                    return Err(refused(
                        path,
                        "git's own files are the orchestrator's; change the work tree instead",
                    ));
                }
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(refused(
                        path,
                        "`..` is not allowed; use a path inside the worktree",
                    ));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(refused(
                        path,
                        "absolute paths are not allowed; use a path relative to the worktree",
                    ));
                }
            }
        }
        Ok(clean)
    }

    fn open_beneath(
        &self,
        shown: &str,
        rel: &Path,
        flags: OFlags,
        mode: Mode,
    ) -> Result<OwnedFd, PathError> {
        let target: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        rustix::fs::openat2(&self.dir, target, flags | OFlags::CLOEXEC, mode, BENEATH)
            .map_err(|e| io_error(shown, e))
    }

    /// Reads a whole file, refusing more than `limit` bytes.
    pub fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, PathError> {
        let file = self.open_file(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > limit {
            return Err(refused(
                path,
                &format!(
                    "is {size} bytes, more than the {limit} a tool reads; read a line range or search it"
                ),
            ));
        }
        let mut content = Vec::new();
        file.take(limit)
            .read_to_end(&mut content)
            .map_err(|e| PathError::Io {
                path: path.to_owned(),
                why: e.to_string(),
            })?;
        Ok(content)
    }

    /// Opens a regular file for reading.
    pub fn open_file(&self, path: &str) -> Result<File, PathError> {
        let rel = Self::relative(path)?;
        let fd = self.open_beneath(path, &rel, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())?;
        let file = File::from(fd);
        let kind = file.metadata().map_err(|e| PathError::Io {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        if !kind.is_file() {
            return Err(refused(path, "is not a regular file"));
        }
        Ok(file)
    }

    /// Checks that a directory can be walked: inside, not through a link.
    pub fn check_dir(&self, path: &str) -> Result<PathBuf, PathError> {
        let rel = Self::relative(path)?;
        self.open_beneath(
            path,
            &rel,
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )?;
        Ok(rel)
    }

    /// Writes `content` as the whole of `path`, making missing parent
    /// directories; keeps an existing file's permissions.
    pub fn write(&self, path: &str, content: &[u8]) -> Result<(), PathError> {
        let rel = Self::relative(path)?;
        let Some(name) = rel.file_name().map(|n| n.to_os_string()) else {
            return Err(refused(path, "names the worktree itself, not a file"));
        };
        let parent = self.make_dirs(path, rel.parent().unwrap_or(Path::new("")))?;
        let mode = match rustix::fs::statat(&parent, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if (stat.st_mode & 0o170000) == 0o040000 => {
                return Err(refused(path, "is a directory"));
            }
            Ok(stat) => Mode::from_bits_truncate(stat.st_mode & 0o777),
            Err(Errno::NOENT) => Mode::from_bits_truncate(0o644),
            Err(e) => return Err(io_error(path, e)),
        };
        let temporary = format!(
            ".{}.pushpals-{}",
            name.to_string_lossy(),
            std::process::id()
        );
        let fd = rustix::fs::openat2(
            &parent,
            temporary.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            mode,
            BENEATH,
        )
        .map_err(|e| io_error(path, e))?;
        let mut file = File::from(fd);
        let written = file
            .write_all(content)
            .and_then(|()| file.sync_data())
            .and_then(|()| rustix::fs::fchmod(&file, mode).map_err(std::io::Error::from));
        let renamed = written.and_then(|()| {
            rustix::fs::renameat(&parent, temporary.as_str(), &parent, name.as_os_str())
                .map_err(std::io::Error::from)
        });
        if let Err(error) = renamed {
            let _ = rustix::fs::unlinkat(&parent, temporary.as_str(), AtFlags::empty());
            return Err(PathError::Io {
                path: path.to_owned(),
                why: error.to_string(),
            });
        }
        Ok(())
    }

    /// Opens (making as needed) the directory `rel` beneath the worktree.
    fn make_dirs(&self, shown: &str, rel: &Path) -> Result<OwnedFd, PathError> {
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let mut dir = rustix::fs::openat2(&self.dir, ".", flags, Mode::empty(), BENEATH)
            .map_err(|e| io_error(shown, e))?;
        for part in rel.components() {
            let Component::Normal(part) = part else {
                continue;
            };
            match rustix::fs::mkdirat(&dir, part, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(io_error(shown, e)),
            }
            dir = rustix::fs::openat2(&dir, part, flags, Mode::empty(), BENEATH)
                .map_err(|e| io_error(shown, e))?;
        }
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn paths_that_leave_or_touch_git_are_refused() {
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            ".git/config",
            "sub/.git/hooks/x",
            "a\0b",
        ] {
            assert!(Root::relative(bad).is_err(), "{bad}");
        }
        assert_eq!(Root::relative("./a/./b").unwrap(), PathBuf::from("a/b"));
    }

    #[test]
    fn writes_make_directories_and_keep_modes() {
        let (dir, root) = root();
        root.write("src/deep/a.txt", b"one").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("src/deep/a.txt")).unwrap(),
            b"one"
        );
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "old").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        root.write("run.sh", b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&script).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&script).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(
            root.write("src", b"x").is_err(),
            "a directory is not overwritten"
        );
    }

    #[test]
    fn symlinks_out_are_neither_read_nor_written_through() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let (dir, root) = root();
        symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        symlink(outside.path(), dir.path().join("out")).unwrap();
        assert!(root.read("link", 1000).is_err());
        assert!(root.read("out/secret", 1000).is_err());
        let error = root.write("out/new", b"x").unwrap_err().to_string();
        assert!(
            error.contains("symbolic link") || error.contains("outside"),
            "{error}"
        );
        assert!(!outside.path().join("new").exists());
        // Writing the link's own name replaces the link, never the target.
        root.write("link", b"mine").unwrap();
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "s3cret"
        );
        assert!(root.check_dir("out").is_err());
    }

    #[test]
    fn a_hard_link_is_replaced_not_written_through() {
        let (dir, root) = root();
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("target"), "keep").unwrap();
        let work = Root::open(&dir.path().join("other")).unwrap();
        std::fs::hard_link(other.join("target"), other.join("linked")).unwrap();
        work.write("linked", b"changed").unwrap();
        assert_eq!(
            std::fs::read_to_string(other.join("target")).unwrap(),
            "keep"
        );
        drop(root);
    }

    #[test]
    fn big_files_and_missing_files_say_so() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("big"), vec![b'a'; 100]).unwrap();
        assert!(
            root.read("big", 10)
                .unwrap_err()
                .to_string()
                .contains("line range")
        );
        assert!(
            root.read("nope", 10)
                .unwrap_err()
                .to_string()
                .contains("no such file")
        );
    }
}
