//! Command policy for Push Pals: decides `allow`, `ask` or `deny` for a
//! command line, and never runs anything.
//!
//! A line is parsed with a real shell grammar ([`shell`]); every simple
//! command in it, every command a wrapper runs (`env`, `timeout`, `nice`,
//! `xargs`, `find -exec`, `sh -c` bodies), every redirection and every
//! variable assignment is judged, and the verdict is the strictest part.
//! Rules are data ([`rules`], built-in ones in `defaults.toml`), each with
//! examples checked when it loads. What cannot be parsed asks; what no rule
//! covers asks.
//!
//! ```
//! use pushpals_policy::{Decision, Policy};
//! let policy = Policy::builtin().unwrap();
//! assert_eq!(policy.judge("cargo test && git status").decision, Decision::Allow);
//! assert_eq!(policy.judge("cargo test && git push").decision, Decision::Deny);
//! assert_eq!(policy.judge("npm install left-pad").decision, Decision::Ask);
//! ```

#![forbid(unsafe_code)]

mod builtins;
pub mod decision;
pub mod engine;
pub mod hazards;
mod option_forms;
pub mod paths;
pub mod rules;
pub mod shell;
pub mod wrappers;

pub use decision::{Decision, Finding, Verdict};
pub use engine::{BuiltinError, DEFAULT_RULES, Policy};
pub use rules::{RuleError, RuleFile, RuleSet, RuleSpec};
