//! What an agent task is asked to do, and what its model calls cost.

use crate::ids::TaskId;
use serde::{Deserialize, Serialize};

/// The brief of an agent task; command tasks have none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentWork {
    /// What the agent should do, in the person's or the planner's words.
    pub prompt: String,
    /// Files and directories the change should stay within (advice for the
    /// agent and the reviewer; confinement is the worktree's).
    #[serde(default)]
    pub scope: Vec<String>,
    /// How to tell the task is done: check names or plain sentences.
    #[serde(default)]
    pub acceptance: Vec<String>,
    /// Tasks that must finish first; the task starts from the last one's
    /// branch head.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub depends_on: Vec<TaskId>,
    /// The plan the task came from, if any.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// The named model to use (`[models.<name>]`); the default worker model
    /// when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// The external agent that does the work (`claude-code`, or a name
    /// from `[agents]` in config.toml); the built-in agent when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
}

/// Model usage summed over a task's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    /// How many model calls were made.
    pub model_calls: u64,
    /// Prompt tokens, as the provider counted them.
    pub input_tokens: u64,
    /// Completion tokens, as the provider counted them.
    pub output_tokens: u64,
    /// Cost in millionths of a US dollar, from the configured prices.
    pub cost_micros: u64,
}

impl Usage {
    /// Both token counts together.
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Adds another call's or task's usage.
    pub fn add(&mut self, other: Usage) {
        self.model_calls = self.model_calls.saturating_add(other.model_calls);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost_micros = self.cost_micros.saturating_add(other.cost_micros);
    }

    /// The cost in US dollars.
    pub fn cost_usd(&self) -> f64 {
        self.cost_micros as f64 / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_adds_up_and_saturates() {
        let mut total = Usage::default();
        total.add(Usage {
            model_calls: 1,
            input_tokens: 10,
            output_tokens: 5,
            cost_micros: 1_500_000,
        });
        total.add(Usage {
            model_calls: 1,
            input_tokens: u64::MAX,
            output_tokens: 1,
            cost_micros: 1,
        });
        assert_eq!(total.model_calls, 2);
        assert_eq!(total.input_tokens, u64::MAX);
        assert_eq!(total.output_tokens, 6);
        assert_eq!(total.tokens(), u64::MAX);
        assert!((total.cost_usd() - 1.500001).abs() < 1e-9);
    }

    #[test]
    fn a_brief_needs_only_its_prompt() {
        let work: AgentWork = serde_json::from_str(r#"{"prompt":"add a test"}"#).unwrap();
        assert_eq!(work.prompt, "add a test");
        assert!(work.depends_on.is_empty());
    }
}
