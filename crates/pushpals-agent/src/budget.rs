//! What one agent task may spend: steps, tokens, money and time.

use pushpals_core::Usage;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// Limits of one agent run (`[agent.budget]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    /// Model calls.
    pub max_steps: u32,
    /// Prompt and completion tokens together.
    pub max_tokens: u64,
    /// US dollars (0 means no money limit, for free local models).
    pub max_cost_usd: f64,
    /// Minutes of wall time (fractions allowed).
    pub max_minutes: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_steps: 50,
            max_tokens: 2_000_000,
            max_cost_usd: 5.0,
            max_minutes: 60.0,
        }
    }
}

/// A budget being spent.
#[derive(Debug)]
pub struct Spending {
    budget: Budget,
    started: Instant,
    steps: u32,
    used: Usage,
}

impl Spending {
    /// Starts spending `budget` now.
    pub fn start(budget: Budget) -> Self {
        Self {
            budget,
            started: Instant::now(),
            steps: 0,
            used: Usage::default(),
        }
    }

    /// What was spent so far.
    pub fn used(&self) -> Usage {
        self.used
    }

    /// Model calls so far.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Records one model call.
    pub fn record(&mut self, usage: Usage) {
        self.steps = self.steps.saturating_add(1);
        self.used.add(usage);
    }

    /// The wall time left, for bounding a single call.
    pub fn time_left(&self) -> Duration {
        self.wall().saturating_sub(self.started.elapsed())
    }

    fn wall(&self) -> Duration {
        let seconds = self.budget.max_minutes * 60.0;
        if seconds.is_finite() && seconds > 0.0 {
            Duration::from_secs_f64(seconds.min(1e9))
        } else {
            Duration::ZERO
        }
    }

    /// Why another model call may not be made, if it may not.
    pub fn exhausted(&self) -> Option<String> {
        let b = &self.budget;
        if self.steps >= b.max_steps {
            return Some(format!(
                "the step budget is spent ({} of {} model calls); raise [agent.budget] max_steps or continue the task",
                self.steps, b.max_steps
            ));
        }
        if self.used.tokens() >= b.max_tokens {
            return Some(format!(
                "the token budget is spent ({} of {} tokens); raise [agent.budget] max_tokens",
                self.used.tokens(),
                b.max_tokens
            ));
        }
        if b.max_cost_usd > 0.0 && self.used.cost_usd() >= b.max_cost_usd {
            return Some(format!(
                "the cost budget is spent (${:.4} of ${:.2}); raise [agent.budget] max_cost_usd",
                self.used.cost_usd(),
                b.max_cost_usd
            ));
        }
        if self.started.elapsed() >= self.wall() {
            return Some(format!(
                "the time budget is spent ({} minutes); raise [agent.budget] max_minutes",
                b.max_minutes
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(tokens: u64, cost_micros: u64) -> Usage {
        Usage {
            model_calls: 1,
            input_tokens: tokens,
            output_tokens: 0,
            cost_micros,
        }
    }

    #[test]
    fn each_limit_stops_the_run() {
        let mut steps = Spending::start(Budget {
            max_steps: 2,
            ..Budget::default()
        });
        steps.record(call(1, 0));
        assert!(steps.exhausted().is_none());
        steps.record(call(1, 0));
        assert!(steps.exhausted().unwrap().contains("step budget"));

        let mut tokens = Spending::start(Budget {
            max_tokens: 100,
            ..Budget::default()
        });
        tokens.record(call(100, 0));
        assert!(tokens.exhausted().unwrap().contains("token budget"));

        let mut money = Spending::start(Budget {
            max_cost_usd: 0.01,
            ..Budget::default()
        });
        money.record(call(1, 10_000));
        assert!(money.exhausted().unwrap().contains("cost budget"));

        let time = Spending::start(Budget {
            max_minutes: 0.0,
            ..Budget::default()
        });
        assert!(time.exhausted().unwrap().contains("time budget"));
    }

    #[test]
    fn no_money_limit_for_free_models() {
        let mut free = Spending::start(Budget {
            max_cost_usd: 0.0,
            ..Budget::default()
        });
        free.record(call(1, 1_000_000_000));
        assert!(free.exhausted().is_none());
    }
}
