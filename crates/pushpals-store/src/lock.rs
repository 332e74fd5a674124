//! One server per data directory, enforced with an exclusive file lock.

use crate::error::{StoreError, StoreResult};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held while a server uses a data directory; released on drop (and by the
/// kernel when the process dies, so a crash leaves no stale lock).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock of `data_dir`, or says who holds it.
    pub fn acquire(data_dir: &Path) -> StoreResult<Self> {
        crate::database::create_private_dir(data_dir)?;
        let path = data_dir.join("serve.lock");
        let data_dir_error = |source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(data_dir_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(StoreError::AlreadyInUse {
                    path: data_dir.to_path_buf(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(data_dir_error(source)),
        }
        file.set_len(0).map_err(data_dir_error)?;
        file.seek(SeekFrom::Start(0)).map_err(data_dir_error)?;
        writeln!(file, "pid {}", std::process::id()).map_err(data_dir_error)?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("already using"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        assert!(DataDirLock::acquire(dir.path()).is_ok());
    }
}
