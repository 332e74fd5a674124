//! Checking an agent task's brief before it is stored.

use super::Lifecycle;
use crate::error::{OrchestratorError, OrchestratorResult};
use pushpals_agent::tools::confine::Root;
use pushpals_core::AgentWork;

/// Longest accepted prompt, in bytes.
const MAX_PROMPT: usize = 64 * 1024;
/// Most scope entries, acceptance lines or dependencies.
const MAX_ITEMS: usize = 50;

fn invalid(message: String) -> OrchestratorError {
    OrchestratorError::InvalidInput(message)
}

impl Lifecycle {
    /// Checks a brief: a prompt, plain relative scope paths, dependencies
    /// that exist, a configured model, and no secret anywhere in it.
    pub(crate) async fn checked_work(
        &self,
        title: &str,
        work: AgentWork,
    ) -> OrchestratorResult<AgentWork> {
        if work.prompt.trim().is_empty() || work.prompt.len() > MAX_PROMPT {
            return Err(invalid(format!(
                "an agent task needs a prompt of 1 to {MAX_PROMPT} bytes"
            )));
        }
        if work.scope.len() > MAX_ITEMS
            || work.acceptance.len() > MAX_ITEMS
            || work.depends_on.len() > MAX_ITEMS
        {
            return Err(invalid(format!(
                "scope, acceptance and depends_on take at most {MAX_ITEMS} entries each"
            )));
        }
        for path in &work.scope {
            Root::relative(path).map_err(|e| invalid(format!("scope: {e}")))?;
        }
        for dependency in &work.depends_on {
            if self.store.task(dependency).await.is_err() {
                return Err(invalid(format!(
                    "depends_on names task {dependency}, which does not exist"
                )));
            }
        }
        let configured = match &work.external {
            None => None,
            Some(name) => {
                let settings = self.settings();
                let configured = settings.agents.get(name);
                pushpals_agent::external::adapter(
                    name,
                    configured.and_then(|c| c.command.as_deref()),
                )
                .map_err(invalid)?;
                configured.and_then(|c| c.model.clone())
            }
        };
        let model = work
            .model
            .clone()
            .or(configured)
            .unwrap_or_else(|| self.settings().agent.worker_model.clone());
        if !self.settings().models.contains_key(&model) {
            return Err(invalid(format!(
                "agent tasks need the model {model:?}, which config.toml does not define: add \
                 [models.{model}] with protocol, base_url and model (or name another with \
                 [agent] worker_model)"
            )));
        }
        let mut text = format!("{title}\n{}", work.prompt);
        for line in work.scope.iter().chain(&work.acceptance) {
            text.push('\n');
            text.push_str(line);
        }
        self.refuse_secrets(&text, "the title or the brief")?;
        Ok(work)
    }
}
