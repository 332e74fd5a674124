//! `[workers]` in config.toml: whether this machine runs tasks itself, the
//! labels it offers, and how long a worker running a task may stay silent.

use serde::Deserialize;
use std::time::Duration;

/// `[workers]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// This machine runs tasks too (default `true`); `false` leaves every
    /// task to worker hosts.
    pub local: bool,
    /// What this machine offers (`cargo`, `node`); unset, it takes a task
    /// whatever it needs.
    pub local_labels: Option<Vec<String>>,
    /// Seconds without a word from a worker running a task before the run
    /// counts as lost and the task is offered again (default 30, 5 to 3600).
    pub silence_secs: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            local: true,
            local_labels: None,
            silence_secs: 30,
        }
    }
}

impl WorkerSettings {
    /// How long a worker running a task may stay silent.
    pub fn silence(&self) -> Duration {
        Duration::from_secs(self.silence_secs)
    }

    /// Whether this machine takes a task that needs `needs`.
    pub fn local_takes(&self, needs: &[String]) -> bool {
        self.local
            && self.local_labels.as_ref().is_none_or(|offered| {
                // This machine's agents are looked for when one runs.
                needs
                    .iter()
                    .all(|n| offered.contains(n) || crate::dispatch::is_agent_need(n))
            })
    }

    /// Checks the section; the error names the key.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !(5..=3600).contains(&self.silence_secs) {
            return Err("[workers] silence_secs must be 5 to 3600".into());
        }
        if let Some(labels) = &self.local_labels
            && let Some(bad) = labels.iter().find(|l| !valid_label(l))
        {
            return Err(format!(
                "[workers] local_labels: {bad:?} is not a label (1 to 32 lowercase letters, \
                 digits, `.`, `_` or `-`, like cargo or node)"
            ));
        }
        Ok(())
    }
}

/// A worker label: 1 to 32 lowercase letters, digits, `.`, `_` or `-`.
pub fn valid_label(label: &str) -> bool {
    (1..=32).contains(&label.len())
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_takes_what_its_labels_cover() {
        let any = WorkerSettings::default();
        assert!(any.local_takes(&["cargo".into()]));
        let labelled = WorkerSettings {
            local_labels: Some(vec!["node".into()]),
            ..WorkerSettings::default()
        };
        assert!(labelled.local_takes(&["node".into()]));
        assert!(labelled.local_takes(&[]));
        assert!(!labelled.local_takes(&["cargo".into()]));
        let off = WorkerSettings {
            local: false,
            ..WorkerSettings::default()
        };
        assert!(!off.local_takes(&[]));
    }

    #[test]
    fn bad_values_are_named() {
        let quick = WorkerSettings {
            silence_secs: 1,
            ..WorkerSettings::default()
        };
        assert!(quick.check().unwrap_err().contains("silence_secs"));
        let odd = WorkerSettings {
            local_labels: Some(vec!["Big Label".into()]),
            ..WorkerSettings::default()
        };
        assert!(odd.check().unwrap_err().contains("Big Label"));
        assert!(WorkerSettings::default().check().is_ok());
        assert!(valid_label("gpu-2") && !valid_label("") && !valid_label("Cargo"));
    }
}
