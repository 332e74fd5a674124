//! Rules as data: loading, compiling, example checks, matching.

use crate::decision::Decision;
use crate::shell::{self, Word};
use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

/// A rule as written in TOML.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Program names (as typed: `git`, or a path like `./gradlew`).
    pub programs: Vec<String>,
    /// Glob patterns the leading arguments must match, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
    /// Glob patterns of which at least one argument must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_arg: Vec<String>,
    /// What to do with a matching command.
    pub decision: Decision,
    /// The command needs the network: when it runs (allowed, or approved
    /// after asking) it gets the network through the orchestrator's
    /// allowlisting proxy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
    /// Why, shown to the person.
    pub reason: String,
    /// Example command lines this rule must match.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// Example command lines this rule must not match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_match: Vec<String>,
}

impl RuleSpec {
    /// The rule as a `[[rule]]` TOML table, to append to a rule file.
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct One<'a> {
            rule: [&'a RuleSpec; 1],
        }
        toml::to_string(&One { rule: [self] }).unwrap_or_default()
    }
}

/// A file of rules: `[[rule]]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleSpec>,
}

/// A problem with a rule file; names the file and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The TOML does not parse or has unknown keys.
    #[error("{source_name}: {message}")]
    Syntax {
        /// Where the rules came from.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A glob pattern is invalid.
    #[error("{source_name}, rule {index} ({programs}): bad pattern {pattern:?}: {message}")]
    Pattern {
        /// Where the rules came from.
        source_name: String,
        /// The rule's position, from 1.
        index: usize,
        /// The rule's programs.
        programs: String,
        /// The pattern.
        pattern: String,
        /// What is wrong.
        message: String,
    },
    /// An example disagrees with its rule.
    #[error("{source_name}, rule {index} ({programs}): example {example:?} {problem}")]
    Example {
        /// Where the rules came from.
        source_name: String,
        /// The rule's position, from 1.
        index: usize,
        /// The rule's programs.
        programs: String,
        /// The example.
        example: String,
        /// How it disagrees.
        problem: &'static str,
    },
    /// A layer that may only tighten has a rule that loosens.
    #[error(
        "{source_name}, rule {index} ({programs}): a repository may only tighten policy; `allow` rules belong in your own policy.toml"
    )]
    Loosens {
        /// Where the rules came from.
        source_name: String,
        /// The rule's position, from 1.
        index: usize,
        /// The rule's programs.
        programs: String,
    },
}

/// How a rule relates to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// It matches.
    Yes,
    /// It may match, depending on values known only at run time.
    Maybe,
    /// It does not match.
    No,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    spec: RuleSpec,
    prefix: Vec<GlobMatcher>,
    any_arg: Vec<GlobMatcher>,
}

fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|g: Glob| g.compile_matcher())
}

impl Rule {
    /// The decision of a matching command.
    pub fn decision(&self) -> Decision {
        self.spec.decision
    }

    /// The reason shown to the person.
    pub fn reason(&self) -> &str {
        &self.spec.reason
    }

    /// How specific the rule is: its prefix patterns, plus one for any
    /// `any_arg` patterns. A more specific rule beats a general one.
    pub fn specificity(&self) -> usize {
        self.prefix.len() + usize::from(!self.any_arg.is_empty())
    }

    /// The rule as written.
    pub fn spec(&self) -> &RuleSpec {
        &self.spec
    }

    /// Whether `argv` (program first) matches.
    pub fn matches(&self, argv: &[Word]) -> Match {
        let Some(program) = argv.first() else {
            return Match::No;
        };
        if program.dynamic || !self.spec.programs.contains(&program.text) {
            return Match::No;
        }
        let args = &argv[1..];
        let mut maybe = false;
        for (i, pattern) in self.prefix.iter().enumerate() {
            match args.get(i) {
                None => return Match::No,
                Some(arg) if arg.dynamic => maybe = true,
                Some(arg) if !pattern.is_match(&arg.text) => return Match::No,
                Some(_) => {}
            }
        }
        if !self.any_arg.is_empty() {
            let hit = args
                .iter()
                .any(|arg| !arg.dynamic && self.any_arg.iter().any(|p| p.is_match(&arg.text)));
            if !hit {
                if args.iter().any(|arg| arg.dynamic) {
                    maybe = true;
                } else {
                    return Match::No;
                }
            }
        }
        if maybe { Match::Maybe } else { Match::Yes }
    }
}

/// One layer of compiled rules (built-in, the user's, the repository's).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    source_name: String,
}

impl RuleSet {
    /// Parses and compiles a TOML rule file, checking every example.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, RuleError> {
        let file: RuleFile = toml::from_str(text).map_err(|e| RuleError::Syntax {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
        Self::compile(file.rules, source_name)
    }

    /// Compiles rule specs, checking every example.
    pub fn compile(specs: Vec<RuleSpec>, source_name: &str) -> Result<Self, RuleError> {
        let mut rules = Vec::with_capacity(specs.len());
        for (position, spec) in specs.into_iter().enumerate() {
            let index = position + 1;
            let programs = spec.programs.join(",");
            let compile = |pattern: &String| {
                glob(pattern).map_err(|e| RuleError::Pattern {
                    source_name: source_name.to_owned(),
                    index,
                    programs: programs.clone(),
                    pattern: pattern.clone(),
                    message: e.kind().to_string(),
                })
            };
            let prefix = spec.prefix.iter().map(compile).collect::<Result<_, _>>()?;
            let any_arg = spec.any_arg.iter().map(compile).collect::<Result<_, _>>()?;
            let rule = Rule {
                spec,
                prefix,
                any_arg,
            };
            rule.check_examples(source_name, index)?;
            rules.push(rule);
        }
        Ok(Self {
            rules,
            source_name: source_name.to_owned(),
        })
    }

    /// Fails if any rule allows: for layers that may only tighten.
    pub fn require_tightening_only(&self) -> Result<(), RuleError> {
        match self
            .rules
            .iter()
            .position(|r| r.decision() == Decision::Allow)
        {
            Some(position) => Err(RuleError::Loosens {
                source_name: self.source_name.clone(),
                index: position + 1,
                programs: self.rules[position].spec.programs.join(","),
            }),
            None => Ok(()),
        }
    }

    /// The decision of the most specific matching rule (the one with the
    /// most argument patterns), the strictest among equally specific ones,
    /// with its reason; `None` when no rule matches. A rule that only may
    /// match counts as `ask` when it would ask or deny, and not at all when
    /// it would allow.
    pub fn decide(&self, argv: &[Word]) -> Option<(Decision, String, bool)> {
        let mut best: Option<(usize, Decision, String, bool)> = None;
        for rule in &self.rules {
            let (decision, reason) = match rule.matches(argv) {
                Match::No => continue,
                Match::Yes => (rule.decision(), rule.reason().to_owned()),
                Match::Maybe if rule.decision() == Decision::Allow => continue,
                Match::Maybe => (
                    Decision::Ask,
                    format!(
                        "its arguments are only known at run time and may mean: {}",
                        rule.reason()
                    ),
                ),
            };
            let specificity = rule.specificity();
            let better = best.as_ref().is_none_or(|(s, d, _, _)| {
                specificity > *s || (specificity == *s && decision > *d)
            });
            if better {
                best = Some((specificity, decision, reason, rule.spec.network));
            }
        }
        best.map(|(_, decision, reason, network)| (decision, reason, network))
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

impl Rule {
    fn check_examples(&self, source_name: &str, index: usize) -> Result<(), RuleError> {
        let error = |example: &str, problem| RuleError::Example {
            source_name: source_name.to_owned(),
            index,
            programs: self.spec.programs.join(","),
            example: example.to_owned(),
            problem,
        };
        for (examples, want) in [(&self.spec.examples, true), (&self.spec.not_match, false)] {
            for example in examples {
                let parsed = shell::parse(example).map_err(|_| error(example, "does not parse"))?;
                let argv = parsed
                    .commands
                    .first()
                    .map(|c| c.argv.clone())
                    .unwrap_or_default();
                let matched = self.matches(&argv) == Match::Yes;
                if matched != want {
                    return Err(error(
                        example,
                        if want {
                            "is not matched by the rule"
                        } else {
                            "is matched by the rule"
                        },
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_whose_example_disagrees_does_not_load() {
        let text = r#"
[[rule]]
programs = ["git"]
prefix = ["status"]
decision = "allow"
reason = "reads"
match = ["git push"]
"#;
        let err = RuleSet::from_toml(text, "test.toml").unwrap_err();
        assert!(
            err.to_string().contains("\"git push\" is not matched"),
            "{err}"
        );
    }

    #[test]
    fn bad_patterns_and_unknown_keys_are_named() {
        let err = RuleSet::from_toml(
            "[[rule]]\nprograms=[\"x\"]\nprefix=[\"[\"]\ndecision=\"allow\"\nreason=\"r\"\n",
            "t",
        )
        .unwrap_err();
        assert!(matches!(err, RuleError::Pattern { .. }), "{err}");
        let err = RuleSet::from_toml("[[rule]]\nprogram=\"x\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("program"), "{err}");
        let err = RuleSet::from_toml(
            "[[rule]]\nprograms=[\"x\"]\ndecision=\"maybe\"\nreason=\"r\"\n",
            "t",
        )
        .unwrap_err();
        assert!(err.to_string().contains("maybe"), "{err}");
    }

    #[test]
    fn a_tightening_layer_refuses_allow_rules() {
        let set = RuleSet::from_toml(
            "[[rule]]\nprograms=[\"curl\"]\ndecision=\"allow\"\nreason=\"r\"\n",
            "pushpals.toml",
        )
        .unwrap();
        assert!(matches!(
            set.require_tightening_only(),
            Err(RuleError::Loosens { .. })
        ));
    }
}
