//! Decisions and verdicts.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What policy says about a command. Ordered from loosest to strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Run it.
    Allow,
    /// Ask the person first.
    Ask,
    /// Never run it.
    Deny,
}

impl Decision {
    /// The decision's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Ask => "ask",
            Self::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision about one part of a command line, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The part judged (a command, a redirection).
    pub part: String,
    /// What policy says about it.
    pub decision: Decision,
    /// Why, for the person.
    pub reason: String,
    /// The part needs the network (its rule says so).
    pub network: bool,
}

/// The decision about a whole command line: the strictest of its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The strictest decision of any part.
    pub decision: Decision,
    /// Every part's finding, in order.
    pub findings: Vec<Finding>,
    /// Some part needs the network: if the line runs, it runs with the
    /// network through the allowlisting proxy.
    pub network: bool,
}

impl Verdict {
    /// A verdict from findings; no findings (an empty line) allows.
    pub fn from_findings(findings: Vec<Finding>) -> Self {
        let decision = findings
            .iter()
            .map(|f| f.decision)
            .max()
            .unwrap_or(Decision::Allow);
        let network = findings.iter().any(|f| f.network);
        Self {
            decision,
            findings,
            network,
        }
    }

    /// The reasons of the parts that decided the verdict, joined.
    pub fn reason(&self) -> String {
        let deciding: Vec<String> = self
            .findings
            .iter()
            .filter(|f| f.decision == self.decision)
            .map(|f| format!("{}: {}", f.part, f.reason))
            .collect();
        deciding.join("; ")
    }
}
