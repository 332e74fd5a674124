//! The model gateway: the only way an external agent reaches a model.
//!
//! The orchestrator serves the models' wire protocols on a Unix socket that
//! each agent's sandbox reaches on a loopback port;
//! a worker holds a per-task gateway token, never a real API key. For each
//! call the gateway finds the task by its token, refuses it when the task's
//! budget is spent, puts the configured model's name and the real key in,
//! forwards it, streams the answer back as it comes, counts what it used,
//! and reports the call (sizes, usage, latency, and both bodies) to the
//! orchestrator, which makes it an event of the task.
//!
//! Protocols: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages
//! and Gemini `generateContent` pass through to a model configured with the
//! same protocol; a call in another protocol than the model's is translated
//! through the provider-neutral conversation ([`translate`]) and answered in
//! the agent's own protocol.

mod errors;
mod forward;
mod judge;
mod routes;
mod translate;

use crate::budget::Budget;
use crate::provider::ModelClient;
use pushpals_core::{TaskId, Usage};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use judge::{Judge, JudgeFuture, ToolUse, Verdict};
pub use routes::{ClientProtocol, JUDGE_PATH};

/// A per-task secret an agent presents instead of an API key.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayToken(String);

impl GatewayToken {
    fn new() -> Result<Self, String> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self(format!("ppgw-{hex}")))
    }

    /// The token's text, to write into the agent's configuration.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for GatewayToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayToken(<hidden>)")
    }
}

/// What one token lets its task do.
struct Grant {
    task: TaskId,
    model: Arc<ModelClient>,
    budget: Budget,
    used: Usage,
    judge: Option<Arc<dyn Judge>>,
    /// Why the budget was found spent, once a call was refused for it.
    spent: tokio::sync::watch::Sender<Option<String>>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("task", &self.task)
            .field("model", &self.model.name())
            .field("used", &self.used)
            .field("judged", &self.judge.is_some())
            .finish()
    }
}

/// What a token is issued for.
pub struct Issue {
    /// The task.
    pub task: TaskId,
    /// Its model.
    pub model: Arc<ModelClient>,
    /// What it may spend.
    pub budget: Budget,
    /// What it spent before (earlier runs).
    pub used: Usage,
    /// Who judges its agent's tool calls, when the agent has a hook.
    pub judge: Option<Arc<dyn Judge>>,
}

/// One call through the gateway, for the task's event log.
#[derive(Debug, Clone)]
pub struct GatewayCall {
    /// The task whose token made it.
    pub task: TaskId,
    /// Model, protocol, status, sizes, usage and timings (the `model_call`
    /// event's payload, without the bodies).
    pub detail: pushpals_core::payload::ModelCall,
    /// What it used.
    pub usage: Usage,
    /// The request body as the agent sent it.
    pub request: Vec<u8>,
    /// The response body as the provider sent it (bounded).
    pub response: Vec<u8>,
    /// The gateway refused the call, and why (the task's budget is spent):
    /// nothing reached the provider, and both bodies are empty.
    pub refused: Option<String>,
}

/// The gateway's registry of tokens; serve it with [`Gateway::serve`].
pub struct Gateway {
    grants: Mutex<HashMap<String, Grant>>,
    calls: mpsc::UnboundedSender<GatewayCall>,
}

/// Why the gateway cannot take a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No token, or one the gateway does not know (revoked, made up).
    Unauthorized,
    /// The task's budget is spent.
    BudgetSpent(TaskId, String),
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway with no tokens, and the receiver of the calls it makes.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<GatewayCall>) {
        let (calls, receiver) = mpsc::unbounded_channel();
        let gateway = Self {
            grants: Mutex::new(HashMap::new()),
            calls,
        };
        (Arc::new(gateway), receiver)
    }

    /// A token for a task to call its model within its budget.
    pub fn issue(&self, issue: Issue) -> Result<GatewayToken, String> {
        let token = GatewayToken::new()?;
        let grant = Grant {
            task: issue.task,
            model: issue.model,
            budget: issue.budget,
            used: issue.used,
            judge: issue.judge,
            spent: tokio::sync::watch::channel(None).0,
        };
        self.grants
            .lock()
            .map_err(|_| "the gateway's registry is poisoned".to_owned())?
            .insert(token.0.clone(), grant);
        Ok(token)
    }

    /// Ends a token: later calls with it are refused.
    pub fn revoke(&self, token: &GatewayToken) {
        if let Ok(mut grants) = self.grants.lock() {
            grants.remove(&token.0);
        }
    }

    /// Tells why, once a call with the token was refused because its
    /// task's budget is spent (`None`: unknown token).
    pub fn spent(
        &self,
        token: &GatewayToken,
    ) -> Option<tokio::sync::watch::Receiver<Option<String>>> {
        Some(self.grants.lock().ok()?.get(&token.0)?.spent.subscribe())
    }

    /// What the token's task has used so far (`None`: unknown token).
    pub fn used(&self, token: &GatewayToken) -> Option<Usage> {
        self.grants.lock().ok()?.get(&token.0).map(|g| g.used)
    }

    /// The task and model of a token, when the task may still spend.
    pub(crate) fn admit(&self, token: &str) -> Result<(TaskId, Arc<ModelClient>), Refusal> {
        let grants = self.grants.lock().map_err(|_| Refusal::Unauthorized)?;
        let grant = grants.get(token).ok_or(Refusal::Unauthorized)?;
        if let Some(spent) = spent(&grant.budget, &grant.used) {
            let why = format!(
                "the Push Pals budget of task {} is spent: {spent}; the task stops here",
                grant.task
            );
            grant.spent.send_replace(Some(why.clone()));
            return Err(Refusal::BudgetSpent(grant.task.clone(), why));
        }
        Ok((grant.task.clone(), Arc::clone(&grant.model)))
    }

    /// The judge of a token's task.
    pub(crate) fn judge_of(&self, token: &str) -> Option<Arc<dyn Judge>> {
        self.grants.lock().ok()?.get(token)?.judge.clone()
    }

    /// Adds a finished call's usage to its token's task.
    pub(crate) fn charge(&self, token: &str, usage: Usage) {
        if let Ok(mut grants) = self.grants.lock()
            && let Some(grant) = grants.get_mut(token)
        {
            grant.used.add(usage);
        }
    }

    /// Hands a finished call to the orchestrator.
    pub(crate) fn report(&self, call: GatewayCall) {
        let _ = self.calls.send(call);
    }

    /// Serves the gateway on a new Unix socket at `socket` (mode 0600).
    pub fn serve(self: &Arc<Self>, socket: &Path) -> std::io::Result<GatewayServer> {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::remove_file(socket);
        let listener = tokio::net::UnixListener::bind(socket)?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
        let app = routes::router(Arc::clone(self));
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the model gateway stopped");
            }
        });
        Ok(GatewayServer {
            socket: socket.to_path_buf(),
            task,
        })
    }
}

/// What of `budget` is spent, if anything (wall time is the command's).
fn spent(budget: &Budget, used: &Usage) -> Option<String> {
    if budget.max_steps > 0 && used.model_calls >= u64::from(budget.max_steps) {
        return Some(format!(
            "{} of {} model calls",
            used.model_calls, budget.max_steps
        ));
    }
    if budget.max_tokens > 0 && used.tokens() >= budget.max_tokens {
        return Some(format!("{} of {} tokens", used.tokens(), budget.max_tokens));
    }
    if budget.max_cost_usd > 0.0 && used.cost_usd() >= budget.max_cost_usd {
        return Some(format!(
            "${:.4} of ${:.2}",
            used.cost_usd(),
            budget.max_cost_usd
        ));
    }
    None
}

/// The gateway being served; stops and removes its socket when dropped.
#[derive(Debug)]
pub struct GatewayServer {
    socket: PathBuf,
    task: JoinHandle<()>,
}

impl GatewayServer {
    /// The socket sandboxes are given.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for GatewayServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_by_calls_tokens_or_money() {
        let budget = Budget {
            max_steps: 3,
            max_tokens: 100,
            max_cost_usd: 0.5,
            max_minutes: 1.0,
        };
        let mut used = Usage::default();
        assert_eq!(spent(&budget, &used), None);
        used.model_calls = 3;
        assert!(
            spent(&budget, &used)
                .unwrap()
                .contains("3 of 3 model calls")
        );
        used.model_calls = 1;
        used.input_tokens = 90;
        used.output_tokens = 10;
        assert!(spent(&budget, &used).unwrap().contains("100 of 100 tokens"));
        used.input_tokens = 0;
        used.cost_micros = 500_000;
        assert!(spent(&budget, &used).unwrap().contains("$0.5000"));
        let free = Budget {
            max_cost_usd: 0.0,
            ..budget
        };
        assert_eq!(spent(&free, &used), None, "0 means no money limit");
    }

    #[test]
    fn tokens_are_unique_and_hidden_when_printed() {
        let (a, b) = (GatewayToken::new().unwrap(), GatewayToken::new().unwrap());
        assert_ne!(a, b);
        assert!(a.secret().starts_with("ppgw-") && a.secret().len() == 53);
        assert!(!format!("{a:?}").contains(a.secret()));
    }
}
