//! The findings' life after a scan: the open ones of a repository, which
//! repository holds one, and dismissing one (it stays dismissed).

use super::Scanner;
use crate::error::{OrchestratorError, OrchestratorResult};
use pushpals_core::payload::FindingDismissed;
use pushpals_core::{Actor, NewEvent};
use pushpals_store::findings::{Finding, FindingFilter};

impl Scanner {
    /// The open findings of one repository.
    pub(crate) async fn open_findings(&self, repo: &str) -> OrchestratorResult<Vec<Finding>> {
        Ok(self
            .store
            .findings(FindingFilter {
                repo: Some(repo.to_owned()),
                state: Some("open".into()),
                kind: None,
            })
            .await?)
    }

    /// The repository holding finding `fingerprint`: `repo` when given,
    /// else the one repository that has it.
    pub(crate) async fn repo_of_finding(
        &self,
        repo: Option<&str>,
        fingerprint: &str,
    ) -> OrchestratorResult<String> {
        if let Some(repo) = repo {
            return Ok(self.repos.served(repo)?.name().to_owned());
        }
        let holders: Vec<String> = self
            .store
            .findings(FindingFilter::default())
            .await?
            .into_iter()
            .filter(|f| f.fingerprint == fingerprint)
            .map(|f| f.repo)
            .collect();
        match holders.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(OrchestratorError::NotFound(format!(
                "no finding {fingerprint}; `pushpals findings` lists them"
            ))),
            several => Err(OrchestratorError::InvalidInput(format!(
                "finding {fingerprint} is in several repositories ({}): say which (--repo)",
                several.join(", ")
            ))),
        }
    }

    /// Dismisses a finding (it stays dismissed on later scans).
    pub async fn dismiss_finding(
        &self,
        repo: Option<&str>,
        fingerprint: &str,
        reason: &str,
        actor: Actor,
    ) -> OrchestratorResult<()> {
        if reason.trim().is_empty() {
            return Err(OrchestratorError::InvalidInput(
                "say why the finding is dismissed (--reason)".into(),
            ));
        }
        let repo = self.repo_of_finding(repo, fingerprint).await?;
        let (fp, why) = (fingerprint.to_owned(), reason.to_owned());
        let dismissed = self
            .store
            .write(move |tx| {
                let dismissed = tx.dismiss_finding(&repo, &fp, &why)?;
                if dismissed {
                    let event = FindingDismissed {
                        fingerprint: fp,
                        reason: why,
                        repo: Some(repo),
                    };
                    tx.append(NewEvent::typed(None, actor, &event)?)?;
                }
                Ok(dismissed)
            })
            .await?;
        if dismissed {
            Ok(())
        } else {
            Err(OrchestratorError::NotFound(format!(
                "no finding {fingerprint}; `pushpals findings` lists them"
            )))
        }
    }
}
