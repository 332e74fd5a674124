//! Options, old-style letters and environment variables through which a
//! program the rules allow runs another program or writes a file it names
//! (tar's `--to-command`, ripgrep's `--pre`, `LESSOPEN`, ...).
//!
//! These are structural: a user's rule that allows the program does not
//! allow them, and an approval of one never becomes an "always" pattern.
//! The table is data (`hazards.toml`); every entry's examples are checked
//! when it loads, so a wrong entry never ships.

use crate::option_forms::OptionForm;
use crate::paths::escapes_worktree;
use crate::shell::{self, Word};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

/// The built-in table.
pub const DEFAULT_HAZARDS: &str = include_str!("hazards.toml");

/// One entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HazardSpec {
    programs: Vec<String>,
    /// Only when the first argument that is not an option is one of these.
    #[serde(default)]
    subcommands: Vec<String>,
    /// Options that run a program (`--to-[command]`, `-I`, `-toolexec`).
    #[serde(default)]
    runs: Vec<String>,
    /// Options whose value is a file the program writes.
    #[serde(default)]
    writes: Vec<String>,
    /// The first argument may be a bundle of letters without a dash (tar).
    #[serde(default)]
    old_style: bool,
    /// Environment variables (globs) that make the program run programs.
    #[serde(default)]
    env: Vec<String>,
    reason: String,
    #[serde(default, rename = "match")]
    examples: Vec<String>,
    #[serde(default)]
    not_match: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HazardFile {
    #[serde(rename = "program")]
    programs: Vec<HazardSpec>,
}

/// A compiled entry.
#[derive(Debug, Clone)]
struct Hazard {
    spec: HazardSpec,
    runs: Vec<(String, OptionForm)>,
    writes: Vec<(String, OptionForm)>,
}

/// A problem with the hazard table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}, entry {index} ({programs}): {message}")]
pub struct HazardError {
    source_name: String,
    index: usize,
    programs: String,
    message: String,
}

/// What a hazard found in a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concern {
    /// It may run another program: ask.
    Runs(String),
    /// It writes outside the worktree: deny.
    WritesOutside(String),
}

/// The compiled table.
#[derive(Debug, Clone)]
pub struct Hazards {
    entries: Vec<Hazard>,
    env: GlobSet,
    env_patterns: Vec<String>,
}

impl Hazards {
    /// The built-in table.
    pub fn builtin() -> Result<Self, HazardError> {
        Self::from_toml(DEFAULT_HAZARDS, "built-in hazards")
    }

    /// Parses and compiles a table, checking every example.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, HazardError> {
        let error = |index: usize, programs: &str, message: String| HazardError {
            source_name: source_name.to_owned(),
            index,
            programs: programs.to_owned(),
            message,
        };
        let file: HazardFile =
            toml::from_str(text).map_err(|e| error(0, "", e.message().to_owned()))?;
        let mut entries = Vec::new();
        let mut env = GlobSetBuilder::new();
        let mut env_patterns = Vec::new();
        for (position, spec) in file.programs.into_iter().enumerate() {
            let index = position + 1;
            let programs = spec.programs.join(",");
            let forms = |list: &[String]| {
                list.iter()
                    .map(|text| {
                        OptionForm::parse(text)
                            .map(|form| (text.clone(), form))
                            .map_err(|why| error(index, &programs, format!("{text:?}: {why}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            let runs = forms(&spec.runs)?;
            let writes = forms(&spec.writes)?;
            for pattern in &spec.env {
                let glob = Glob::new(pattern)
                    .map_err(|e| error(index, &programs, format!("{pattern:?}: {e}")))?;
                env.add(glob);
                env_patterns.push(pattern.clone());
            }
            entries.push(Hazard { spec, runs, writes });
        }
        let env = env
            .build()
            .map_err(|e| error(0, "", format!("the environment patterns: {e}")))?;
        let hazards = Self {
            entries,
            env,
            env_patterns,
        };
        for (position, entry) in hazards.entries.iter().enumerate() {
            hazards
                .check_examples(entry)
                .map_err(|message| error(position + 1, &entry.spec.programs.join(","), message))?;
        }
        Ok(hazards)
    }

    /// Whether setting `name` can make an allowed program run programs.
    pub fn sensitive_variable(&self, name: &str) -> bool {
        self.env.is_match(name)
    }

    /// The environment patterns, for listing.
    pub fn variables(&self) -> &[String] {
        &self.env_patterns
    }

    /// What is hazardous about `argv` (program first), strictest first.
    pub fn concerns(&self, argv: &[Word]) -> Vec<Concern> {
        let Some(program) = argv.first().filter(|w| !w.dynamic) else {
            return Vec::new();
        };
        let args = &argv[1..];
        let mut concerns = Vec::new();
        for entry in self
            .entries
            .iter()
            .filter(|e| e.spec.programs.contains(&program.text))
        {
            if !entry.applies_to(args) {
                continue;
            }
            entry.judge(&program.text, args, &mut concerns);
        }
        concerns.sort_by_key(|c| matches!(c, Concern::Runs(_)));
        concerns.dedup();
        concerns
    }

    fn check_examples(&self, entry: &Hazard) -> Result<(), String> {
        for (examples, want) in [(&entry.spec.examples, true), (&entry.spec.not_match, false)] {
            for example in examples {
                let parsed = shell::parse(example)
                    .map_err(|_| format!("example {example:?} does not parse"))?;
                let Some(command) = parsed.commands.first() else {
                    return Err(format!("example {example:?} has no command"));
                };
                let by_env = parsed
                    .assignments
                    .iter()
                    .chain(&command.assignments)
                    .any(|(name, _)| entry.spec.env.iter().any(|p| glob_matches(p, name)));
                let program = command.argv.first().map(|w| w.text.as_str()).unwrap_or("");
                let mut concerns = Vec::new();
                if entry.spec.programs.iter().any(|p| p == program)
                    && entry.applies_to(&command.argv[1..])
                {
                    entry.judge(program, &command.argv[1..], &mut concerns);
                }
                let found = by_env || !concerns.is_empty();
                if found != want {
                    return Err(format!(
                        "example {example:?} {}",
                        if want { "is not caught" } else { "is caught" }
                    ));
                }
            }
        }
        Ok(())
    }
}

fn glob_matches(pattern: &str, name: &str) -> bool {
    Glob::new(pattern).is_ok_and(|g| g.compile_matcher().is_match(name))
}

/// Whether a word may expand to something starting with `-` (a variable,
/// a substitution, a glob that may match a file named `--to-command=...`).
fn may_become_option(word: &Word) -> bool {
    let first = word.text.trim_start_matches(['"', '\'']).chars().next();
    if word.dynamic {
        return matches!(first, Some('$' | '`' | '*' | '?' | '[' | '-') | None);
    }
    word.glob && matches!(word.text.chars().next(), Some('*' | '?' | '['))
}

impl Hazard {
    fn applies_to(&self, args: &[Word]) -> bool {
        if self.spec.subcommands.is_empty() {
            return true;
        }
        match args.iter().find(|w| w.dynamic || !w.text.starts_with('-')) {
            Some(word) if word.dynamic => true,
            Some(word) => self.spec.subcommands.contains(&word.text),
            None => false,
        }
    }

    fn judge(&self, program: &str, args: &[Word], concerns: &mut Vec<Concern>) {
        let reason = &self.spec.reason;
        for (i, arg) in args.iter().enumerate() {
            if !arg.dynamic && arg.text == "--" {
                break;
            }
            if may_become_option(arg) && !self.runs.is_empty() {
                concerns.push(Concern::Runs(format!(
                    "`{}` may expand to an option of {program}, and {reason}; write `./` before a glob, or `--` before names",
                    arg.text
                )));
                continue;
            }
            if arg.dynamic {
                continue;
            }
            let old_style = self.spec.old_style && i == 0 && !arg.text.starts_with('-');
            let as_option = if old_style {
                format!("-{}", arg.text)
            } else {
                arg.text.clone()
            };
            if let Some((written, _)) = self.runs.iter().find(|(_, f)| f.find(&as_option).is_some())
            {
                concerns.push(Concern::Runs(format!("{program} {written}: {reason}")));
            }
            for (written, form) in &self.writes {
                let Some(attached) = form.find(&as_option) else {
                    continue;
                };
                let target = match attached {
                    Some(value) => Some(Word::literal(value)),
                    None => args.get(i + 1).cloned(),
                };
                match target {
                    Some(t) if t.dynamic => concerns.push(Concern::Runs(format!(
                        "{program} {written} writes to a file named only at run time"
                    ))),
                    Some(t) => {
                        if let Some(why) = escapes_worktree(&t.text) {
                            concerns.push(Concern::WritesOutside(format!(
                                "{program} {written} writes outside the worktree: {why}"
                            )));
                        }
                    }
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<Word> {
        line.iter().map(|w| Word::literal(*w)).collect()
    }

    #[test]
    fn an_entry_whose_example_is_not_caught_does_not_load() {
        let text = "[[program]]\nprograms = [\"tar\"]\nruns = [\"--to-[command]\"]\nreason = \"r\"\nmatch = [\"tar -xf a.tar\"]\n";
        let err = Hazards::from_toml(text, "t").unwrap_err();
        assert!(err.to_string().contains("is not caught"), "{err}");
        let text = "[[program]]\nprograms = [\"tar\"]\nruns = [\"to\"]\nreason = \"r\"\n";
        let err = Hazards::from_toml(text, "t").unwrap_err();
        assert!(err.to_string().contains("must start with"), "{err}");
    }

    #[test]
    fn the_builtin_table_loads_and_stops_at_a_double_dash() {
        let hazards = Hazards::builtin().unwrap();
        assert!(
            !hazards
                .concerns(&words(&["tar", "-xf", "a.tar", "--to-command=id"]))
                .is_empty()
        );
        assert!(
            hazards
                .concerns(&words(&["tar", "-xf", "a.tar", "--", "--to-command=id"]))
                .is_empty()
        );
        assert!(hazards.sensitive_variable("TAR_OPTIONS"));
        assert!(!hazards.sensitive_variable("TERM"));
    }
}
