//! Named models as configured in `config.toml` (`[models.<name>]`).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Which wire protocol a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OpenAI-compatible Chat Completions (`POST {base_url}/chat/completions`;
    /// OpenAI, OpenRouter, Ollama, vLLM, llama.cpp server, LM Studio, ...).
    Openai,
    /// Anthropic Messages (`POST {base_url}/v1/messages`).
    Anthropic,
    /// OpenAI Responses (`POST {base_url}/responses`; OpenAI, and the
    /// servers that copy it).
    OpenaiResponses,
    /// Gemini (`POST {base_url}/v1beta/models/{model}:generateContent`).
    Gemini,
}

impl Protocol {
    /// Its name in config.toml and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::OpenaiResponses => "openai_responses",
            Self::Gemini => "gemini",
        }
    }
}

/// One named model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Its wire protocol.
    pub protocol: Protocol,
    /// The provider's base URL, e.g. `http://127.0.0.1:11434/v1` for an
    /// OpenAI-compatible server or `https://api.anthropic.com`.
    pub base_url: String,
    /// The provider's model name.
    pub model: String,
    /// The environment variable holding the API key; the key itself is
    /// never written to config, the database or a log.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The context window in tokens; older turns are summarised before a
    /// conversation outgrows it.
    #[serde(default = "default_context")]
    pub context_tokens: u64,
    /// The most tokens one reply may have.
    #[serde(default = "default_max_output")]
    pub max_output_tokens: u64,
    /// US dollars per million prompt tokens.
    #[serde(default)]
    pub input_price_per_mtok: f64,
    /// US dollars per million completion tokens.
    #[serde(default)]
    pub output_price_per_mtok: f64,
    /// Stream replies (server-sent events); on by default.
    #[serde(default = "default_true")]
    pub stream: bool,
    /// Seconds one attempt may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Retries after a 429, a 5xx or a dropped connection.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
}

fn default_context() -> u64 {
    128_000
}
fn default_max_output() -> u64 {
    4096
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> u64 {
    300
}
fn default_retries() -> u32 {
    4
}

impl ModelConfig {
    /// One attempt's time limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// What `input` and `output` tokens cost, in millionths of a dollar.
    pub fn cost_micros(&self, input: u64, output: u64) -> u64 {
        // dollars per million tokens == micro-dollars per token
        let micros =
            input as f64 * self.input_price_per_mtok + output as f64 * self.output_price_per_mtok;
        if micros.is_finite() && micros > 0.0 {
            micros.round() as u64
        } else {
            0
        }
    }

    /// Checks what a config file cannot express by types alone.
    pub fn validate(&self, name: &str) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.base_url).map_err(|e| {
            format!(
                "[models.{name}] base_url {:?} is not a URL ({e}); write it like http://127.0.0.1:8080/v1",
                self.base_url
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "[models.{name}] base_url must be http or https, not {}",
                url.scheme()
            ));
        }
        if self.model.trim().is_empty() {
            return Err(format!("[models.{name}] needs a model name"));
        }
        if self.input_price_per_mtok < 0.0 || self.output_price_per_mtok < 0.0 {
            return Err(format!("[models.{name}] prices cannot be negative"));
        }
        if self.max_output_tokens == 0 || self.context_tokens <= self.max_output_tokens {
            return Err(format!(
                "[models.{name}] context_tokens must be larger than max_output_tokens"
            ));
        }
        if let Some(var) = &self.api_key_env
            && (var.is_empty() || var.contains('='))
        {
            return Err(format!(
                "[models.{name}] api_key_env names an environment variable, like OPENAI_API_KEY"
            ));
        }
        Ok(())
    }
}

/// The `[models]` table and which model does what.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Named models.
    #[serde(flatten)]
    pub named: BTreeMap<String, ModelConfig>,
}

/// Which named model each role uses (`[agent]` in config.toml).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The model agent tasks use unless their brief names another.
    #[serde(default = "default_worker")]
    pub worker_model: String,
    /// The model the planner uses.
    #[serde(default = "default_planner")]
    pub planner_model: String,
    /// Budgets of one agent task.
    #[serde(default)]
    pub budget: crate::budget::Budget,
    /// Longest tool output given back to the model, in bytes.
    #[serde(default = "default_tool_output")]
    pub max_tool_output: usize,
    /// Plans wait for the person's OK before their tasks are created.
    #[serde(default)]
    pub confirm_plans: bool,
    /// The external agent planned and proposed tasks use (`claude-code`,
    /// or a name from `[agents]`); the built-in agent when absent.
    #[serde(default)]
    pub external: Option<String>,
}

fn default_worker() -> String {
    "strong".into()
}
fn default_planner() -> String {
    "fast".into()
}
fn default_tool_output() -> usize {
    16 * 1024
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            worker_model: default_worker(),
            planner_model: default_planner(),
            budget: crate::budget::Budget::default(),
            max_tool_output: default_tool_output(),
            confirm_plans: false,
            external: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(extra: &str) -> Result<ModelConfig, toml::de::Error> {
        toml::from_str(&format!(
            "protocol = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n{extra}"
        ))
    }

    #[test]
    fn prices_make_a_cost() {
        let config = model("input_price_per_mtok = 3.0\noutput_price_per_mtok = 15.0").unwrap();
        assert_eq!(config.cost_micros(1000, 100), 4500);
        assert!(config.validate("x").is_ok());
    }

    #[test]
    fn bad_settings_are_named() {
        let bad_url = ModelConfig {
            base_url: "localhost:8080".into(),
            ..model("").unwrap()
        };
        assert!(
            bad_url
                .validate("fast")
                .unwrap_err()
                .contains("[models.fast] base_url")
        );
        let bad_key = model("api_key_env = \"KEY=abc\"").unwrap();
        assert!(bad_key.validate("x").unwrap_err().contains("api_key_env"));
        let small = model("context_tokens = 100\nmax_output_tokens = 100").unwrap();
        assert!(small.validate("x").unwrap_err().contains("context_tokens"));
        assert!(
            model("api_key = \"sk-1\"").is_err(),
            "a key in the file is refused"
        );
    }
}
