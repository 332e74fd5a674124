//! Shell parsing: a command line into the simple commands it would run.
//!
//! Uses the tree-sitter bash grammar. Every `command` node anywhere in the
//! tree becomes a [`SimpleCommand`] (commands inside `$(...)`, backticks,
//! process substitutions, here-doc bodies, subshells, conditions and loops
//! included), and every file redirection anywhere becomes a [`Redirect`].
//! Words whose value is only known at run time (expansions, substitutions)
//! are marked dynamic.
//!
//! Over 400 lines: the bash grammar walk and word evaluation, with their tests beside them.

use tree_sitter::{Node, Parser};

/// One word of a command, as far as it can be known before running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word's value after quote removal, or its source text when
    /// dynamic.
    pub text: String,
    /// True when the value depends on expansions or substitutions.
    pub dynamic: bool,
    /// True when the word has unquoted glob characters, which the shell
    /// expands to file names (which may start with `-`).
    pub glob: bool,
}

impl Word {
    /// A word known before running.
    pub fn literal(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            dynamic: false,
            glob: false,
        }
    }
}

/// A file redirection (`>`, `>>`, `<`, `&>`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The operator.
    pub operator: String,
    /// The file.
    pub target: Word,
}

impl Redirect {
    /// True when the redirection can create or change the file.
    pub fn writes(&self) -> bool {
        !matches!(self.operator.as_str(), "<" | "<&" | "<<<")
    }
}

/// A simple command: assignments, then the program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// `NAME=value` words before the program.
    pub assignments: Vec<(String, Word)>,
    /// The program and its arguments.
    pub argv: Vec<Word>,
}

/// Everything a command line would run and write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedLine {
    /// Every simple command, in source order.
    pub commands: Vec<SimpleCommand>,
    /// Every file redirection.
    pub redirects: Vec<Redirect>,
    /// Variables set for the rest of the line (`X=1; cmd`, `export X=1`).
    pub assignments: Vec<(String, Word)>,
    /// The program names of each pipeline, in order (`curl x | sh` gives
    /// `["curl", "sh"]`; dynamic names are empty).
    pub pipelines: Vec<Vec<String>>,
}

/// A command line that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the command line cannot be parsed: {0}")]
pub struct ParseError(pub String);

/// Parses `line` with the bash grammar.
pub fn parse(line: &str) -> Result<ParsedLine, ParseError> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .map_err(|e| ParseError(format!("the shell grammar failed to load: {e}")))?;
    let tree = parser
        .parse(line, None)
        .ok_or_else(|| ParseError("the parser gave up".into()))?;
    let root = tree.root_node();
    if root.has_error() {
        return Err(ParseError(
            "it is not valid shell (unbalanced quotes, brackets or operators?)".into(),
        ));
    }
    let mut parsed = ParsedLine::default();
    walk(root, line.as_bytes(), &mut parsed)?;
    Ok(parsed)
}

fn text<'a>(node: Node<'_>, source: &'a [u8]) -> &'a str {
    node.utf8_text(source).unwrap_or("")
}

fn walk(node: Node<'_>, source: &[u8], parsed: &mut ParsedLine) -> Result<(), ParseError> {
    match node.kind() {
        "command" => parsed.commands.push(simple_command(node, source)),
        "declaration_command" => parsed.commands.push(declaration(node, source)),
        "file_redirect" => {
            if let Some(redirect) = file_redirect(node, source) {
                parsed.redirects.push(redirect);
            }
        }
        "pipeline" => parsed.pipelines.push(pipeline_programs(node, source)),
        "variable_assignment" if !is_inside_command(node) => {
            if let Some(assignment) = assignment(node, source) {
                parsed.assignments.push(assignment);
            }
        }
        _ => {}
    }
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        walk(child, source, parsed)?;
    }
    Ok(())
}

/// The first word of each stage of a pipeline.
fn pipeline_programs(node: Node<'_>, source: &[u8]) -> Vec<String> {
    let mut programs = Vec::new();
    let mut cursor = node.walk();
    for stage in node.named_children(&mut cursor) {
        let command = if stage.kind() == "redirected_statement" {
            stage.child_by_field_name("body").unwrap_or(stage)
        } else {
            stage
        };
        let name = if command.kind() == "command" {
            let argv = simple_command(command, source).argv;
            argv.first()
                .filter(|w| !w.dynamic)
                .map(|w| w.text.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        programs.push(name);
    }
    programs
}

/// True for an assignment that prefixes a command (`X=1 cmd`), which
/// [`simple_command`] collects.
fn is_inside_command(node: Node<'_>) -> bool {
    node.parent()
        .is_some_and(|parent| parent.kind() == "command")
}

fn simple_command(node: Node<'_>, source: &[u8]) -> SimpleCommand {
    let mut command = SimpleCommand::default();
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        match child.kind() {
            "variable_assignment" => {
                if let Some(assignment) = assignment(child, source) {
                    command.assignments.push(assignment);
                }
            }
            "command_name" => {
                let inner = child.named_child(0).unwrap_or(child);
                command.argv.push(word(inner, source));
            }
            "file_redirect" | "heredoc_redirect" | "herestring_redirect" => {}
            _ => command.argv.push(word(child, source)),
        }
    }
    command
}

/// `declare`, `local`, `export`, `typeset`, `readonly` with their words;
/// the assignments in them are collected by [`walk`] too.
fn declaration(node: Node<'_>, source: &[u8]) -> SimpleCommand {
    let mut command = SimpleCommand::default();
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if !child.is_named() {
            if command.argv.is_empty() {
                command.argv.push(Word::literal(text(child, source)));
            }
            continue;
        }
        if child.kind() == "variable_assignment" {
            let value_dynamic = assignment(child, source).is_some_and(|(_, v)| v.dynamic);
            command.argv.push(Word {
                text: text(child, source).to_owned(),
                dynamic: value_dynamic,
                glob: false,
            });
        } else {
            command.argv.push(word(child, source));
        }
    }
    command
}

fn assignment(node: Node<'_>, source: &[u8]) -> Option<(String, Word)> {
    let name = node.child_by_field_name("name")?;
    let value = node
        .child_by_field_name("value")
        .map_or_else(|| Word::literal(""), |v| word(v, source));
    Some((text(name, source).to_owned(), value))
}

fn file_redirect(node: Node<'_>, source: &[u8]) -> Option<Redirect> {
    let mut operator = String::new();
    let mut target = None;
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if !child.is_named() {
            operator = child.kind().to_owned();
        } else if child.kind() != "file_descriptor" && target.is_none() {
            target = Some(word(child, source));
        }
    }
    let target = target?;
    // `2>&1`, `>&-`: duplicating or closing a descriptor, not a file.
    let duplicates = matches!(operator.as_str(), ">&" | "<&")
        && !target.dynamic
        && (target.text == "-" || target.text.bytes().all(|b| b.is_ascii_digit()));
    (!duplicates).then_some(Redirect { operator, target })
}

/// The value of a word node after quote removal, or its source text marked
/// dynamic when expansions decide it.
pub(crate) fn word(node: Node<'_>, source: &[u8]) -> Word {
    match node.kind() {
        "word" | "number" => Word {
            glob: has_unquoted_glob(text(node, source)),
            ..Word::literal(unescape(text(node, source)))
        },
        "raw_string" => {
            let raw = text(node, source);
            Word::literal(raw.get(1..raw.len().saturating_sub(1)).unwrap_or(""))
        }
        "string" => {
            let mut dynamic = false;
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                if child.kind() != "string_content" {
                    dynamic = true;
                }
            }
            let raw = text(node, source);
            let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
            if dynamic {
                Word {
                    text: raw.to_owned(),
                    dynamic: true,
                    glob: false,
                }
            } else {
                Word::literal(unescape_double_quoted(inner))
            }
        }
        "concatenation" => {
            let mut joined = String::new();
            let mut dynamic = false;
            let mut glob = false;
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                let part = word(child, source);
                dynamic |= part.dynamic;
                glob |= part.glob;
                joined.push_str(&part.text);
            }
            if dynamic {
                Word {
                    text: text(node, source).to_owned(),
                    dynamic: true,
                    glob,
                }
            } else {
                Word {
                    glob,
                    ..Word::literal(joined)
                }
            }
        }
        _ => Word {
            text: text(node, source).to_owned(),
            dynamic: true,
            glob: false,
        },
    }
}

/// Whether an unquoted word's source has a glob character not escaped.
fn has_unquoted_glob(raw: &str) -> bool {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Removes backslash escapes of an unquoted word.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\n') | None => {}
                Some(escaped) => out.push(escaped),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Removes the escapes that double quotes honour.
fn unescape_double_quoted(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('"' | '\\' | '$' | '`' | '\n')) {
            if let Some(escaped) = chars.next()
                && escaped != '\n'
            {
                out.push(escaped);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(line: &str) -> Vec<Vec<String>> {
        parse(line)
            .unwrap()
            .commands
            .into_iter()
            .map(|c| c.argv.into_iter().map(|w| w.text).collect())
            .collect()
    }

    #[test]
    fn compound_lines_yield_every_command() {
        assert_eq!(
            argvs("a x && b 'y z' || c \"q\" ; d | e"),
            vec![
                vec!["a", "x"],
                vec!["b", "y z"],
                vec!["c", "q"],
                vec!["d"],
                vec!["e"]
            ]
        );
        assert_eq!(argvs("(cd sub; make) && echo $(whoami)").len(), 4);
        assert_eq!(argvs("echo `id`")[1], vec!["id"]);
    }

    #[test]
    fn quoting_is_removed_and_expansions_are_dynamic() {
        let parsed = parse(r#"r\m -rf "$HOME" 'a b'c"#).unwrap();
        let argv = &parsed.commands[0].argv;
        assert_eq!(argv[0], Word::literal("rm"));
        assert!(argv[2].dynamic);
        assert_eq!(argv[3], Word::literal("a bc"));
    }

    #[test]
    fn redirections_are_collected_and_descriptor_copies_are_not() {
        let parsed = parse("make 2>&1 > out.log && cat < in.txt >> /etc/passwd").unwrap();
        let targets: Vec<_> = parsed
            .redirects
            .iter()
            .map(|r| (r.operator.as_str(), r.target.text.as_str(), r.writes()))
            .collect();
        assert_eq!(
            targets,
            vec![
                (">", "out.log", true),
                ("<", "in.txt", false),
                (">>", "/etc/passwd", true)
            ]
        );
    }

    #[test]
    fn heredoc_bodies_with_substitutions_are_seen() {
        let parsed = parse("cat <<EOF\nhello $(rm -rf /)\nEOF\n").unwrap();
        assert!(
            parsed
                .commands
                .iter()
                .any(|c| c.argv.first().is_some_and(|w| w.text == "rm"))
        );
    }

    #[test]
    fn assignments_are_kept() {
        let parsed = parse("PATH=/tmp/evil ls; X=1 env").unwrap();
        assert_eq!(parsed.commands[0].assignments[0].0, "PATH");
        let parsed = parse("export LD_PRELOAD=/x.so; ls").unwrap();
        assert!(
            parsed
                .assignments
                .iter()
                .any(|(name, _)| name == "LD_PRELOAD")
        );
    }

    #[test]
    fn broken_shell_is_an_error() {
        assert!(parse("echo 'unterminated").is_err());
        assert!(parse("a && && b").is_err());
    }
}
