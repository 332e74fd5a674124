//! Pull requests: offered after a push, opened on the configured forge
//! after their own approval.

use super::Delivery;
use crate::error::{OrchestratorError, OrchestratorResult};
use pushpals_core::payload::{CheckResult, DiffRecorded, PrOpened, ProposalCreated};
use pushpals_core::{Actor, Approval, ApprovalAction, NewEvent, Task};
use pushpals_workspace::forge::{Forge, GitHub, PullRequest};
use serde_json::json;

impl Delivery {
    /// After a push: asks for the pull request, when a forge is set up.
    /// Not when the task's pull request is already open: pushing its branch
    /// updated it, and a second create would only fail.
    /// Not for a repository with no repository on the forge.
    pub(crate) async fn offer_pr(&self, task: &Task, base: &str) -> OrchestratorResult<()> {
        let Some(forge) = self.settings.get().forge.clone() else {
            return Ok(());
        };
        let served = self.repos.served(&task.repo)?;
        let Some((owner, name)) = self.forge_repository(&served).await? else {
            tracing::info!(
                repo = served.name(),
                "no pull request offered: the repository has no repository on [forge] \
                 (its remote is on another host; set [repos.NAME] forge_repo)"
            );
            return Ok(());
        };
        if self.opened_pull_request(&task.id).await?.is_some() {
            return Ok(());
        }
        let id = task.id.clone();
        let summary = format!(
            "Open a pull request on {} {owner}/{name} for {} into {base}",
            forge.kind, task.branch
        );
        let base = base.to_owned();
        self.store
            .write(move |tx| {
                tx.request_approval(
                    &id,
                    ApprovalAction::Pr,
                    &summary,
                    json!({ "base_branch": base }),
                )
            })
            .await?;
        Ok(())
    }

    /// The forge client for a repository's repository on `[forge]`.
    async fn forge(&self, served: &crate::repositories::ServedRepo) -> OrchestratorResult<GitHub> {
        let all = self.settings.get();
        let settings = all.forge.as_ref().ok_or_else(|| {
            OrchestratorError::DeliveryBlocked("no [forge] is set up in config.toml".into())
        })?;
        let token = std::env::var(&settings.token_env)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                OrchestratorError::DeliveryBlocked(format!(
                    "the environment variable {} (named by [forge] token_env) holds no token; \
                     set it where the server runs",
                    settings.token_env
                ))
            })?;
        let Some((owner, name)) = self.forge_repository(served).await? else {
            return Err(OrchestratorError::DeliveryBlocked(format!(
                "repository {0} has no repository on the forge: its remote is not on the forge's host. \
                 Set [repos.{0}] forge_repo = \"owner/name\" in config.toml",
                served.name()
            )));
        };
        GitHub::new(&settings.api_url, &owner, &name, token)
            .map_err(|e| OrchestratorError::DeliveryBlocked(e.to_string()))
    }

    /// Opens the pull request of an approved PR approval, into the base
    /// branch it was offered for.
    pub(crate) async fn open_approved_pr(
        &self,
        approval: &Approval,
        detail: &serde_json::Value,
    ) -> OrchestratorResult<Task> {
        let task = self.store.task(&approval.task_id).await?;
        let base = detail["base_branch"]
            .as_str()
            .map_or_else(|| "main".to_owned(), str::to_owned);
        let served = self.repos.served(&task.repo)?;
        let forge = self.forge(&served).await?;
        let request = PullRequest {
            title: task.title.clone(),
            body: self.pr_body(&task).await?,
            head: task.branch.clone(),
            base,
            draft: self.settings.get().forge.as_ref().is_some_and(|f| f.draft),
        };
        let opened = forge
            .open_pull_request(&request)
            .await
            .map_err(|e| OrchestratorError::DeliveryBlocked(e.to_string()))?;
        let id = task.id.clone();
        let event = NewEvent::typed(
            Some(&id),
            Actor::Orchestrator,
            &PrOpened {
                forge: forge.name().to_owned(),
                url: opened.url,
                number: opened.number,
            },
        )?;
        self.store.write(move |tx| tx.append(event)).await?;
        Ok(task)
    }

    /// The task's open pull request, if one was opened.
    pub(crate) async fn opened_pull_request(
        &self,
        task_id: &pushpals_core::TaskId,
    ) -> OrchestratorResult<Option<PrOpened>> {
        Ok(self
            .task_events(task_id)
            .await?
            .iter()
            .rev()
            .find_map(|e| e.read::<PrOpened>()))
    }

    /// What changed, why, the checks and their results, where the audit is.
    pub(crate) async fn pr_body(&self, task: &Task) -> OrchestratorResult<String> {
        let events = self.task_events(&task.id).await?;
        let mut body = format!("{}\n\n", task.title);
        // What the task did: the agent's summary, or the commands it ran.
        let commands = crate::summary::commands_run(task, &events);
        if let Some(summary) = crate::summary::agent_summary(&events) {
            body.push_str("### Summary\n");
            body.push_str(&summary);
            body.push_str("\n\n");
        } else if !commands.is_empty() {
            body.push_str("### Summary\n");
            for command in &commands {
                body.push_str(&format!("Ran `{command}`\n"));
            }
            body.push('\n');
        }
        // A proposal from the scanner says why, with its evidence.
        if let Some(rationale) = events
            .iter()
            .find_map(|e| e.read::<ProposalCreated>())
            .map(|proposal| proposal.rationale)
            .filter(|rationale| !rationale.is_empty())
        {
            body.push_str("### Why\n");
            body.push_str(&rationale);
            body.push('\n');
        }
        if let Some(diff) = events.iter().rev().find_map(|e| e.read::<DiffRecorded>()) {
            body.push_str("### What changed\n");
            for file in diff.files {
                let count = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
                body.push_str(&format!(
                    "- `{}` (+{} −{})\n",
                    file.path,
                    count(file.added),
                    count(file.removed)
                ));
            }
        }
        body.push_str("\n### Checks\n");
        let checks: Vec<CheckResult> = events.iter().filter_map(|e| e.read()).collect();
        if checks.is_empty() {
            body.push_str("- none configured in pushpals.toml\n");
        }
        for check in checks {
            body.push_str(&format!(
                "- {}: `{}` — {}\n",
                check.check,
                check.command,
                if check.passed { "passed" } else { "failed" }
            ));
        }
        body.push_str(&format!(
            "\n---\nMade by Push Pals, task `{}`. Its audit trail: `pushpals audit export` \
             (GET /api/v1/audit/export), events of task `{}`.\n",
            task.id, task.id
        ));
        Ok(self.secrets.get().redact(&body).into_owned())
    }
}
