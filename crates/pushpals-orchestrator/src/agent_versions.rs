//! External agents' versions, asked of each program once per build of it
//! (by its modification time) instead of before every task.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// What a program said its version was, and its modification time then.
type Known = (Option<SystemTime>, Option<String>);

/// Versions by program.
#[derive(Default)]
pub(crate) struct AgentVersions(Mutex<HashMap<PathBuf, Known>>);

impl AgentVersions {
    /// The version `program` gave when it had this modification time;
    /// `None` when it was not asked since it changed (or its time is not
    /// known, so a change could not be seen).
    pub(crate) fn known(
        &self,
        program: &Path,
        modified: Option<SystemTime>,
    ) -> Option<Option<String>> {
        modified?;
        self.0.lock().ok().and_then(|versions| {
            versions
                .get(program)
                .filter(|(when, _)| *when == modified)
                .map(|(_, version)| version.clone())
        })
    }

    /// Keeps what `program` said.
    pub(crate) fn remember(
        &self,
        program: &Path,
        modified: Option<SystemTime>,
        version: Option<String>,
    ) {
        if let Ok(mut versions) = self.0.lock() {
            versions.insert(program.to_path_buf(), (modified, version));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_version_is_known_until_the_program_changes() {
        let versions = AgentVersions::default();
        let program = Path::new("/usr/bin/agent");
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        assert_eq!(versions.known(program, Some(then)), None);
        versions.remember(program, Some(then), Some("1.2.3".into()));
        assert_eq!(
            versions.known(program, Some(then)),
            Some(Some("1.2.3".into()))
        );
        let later = then + Duration::from_secs(1);
        assert_eq!(
            versions.known(program, Some(later)),
            None,
            "rebuilt: ask again"
        );
        assert_eq!(versions.known(program, None), None, "no time: ask again");
    }
}
