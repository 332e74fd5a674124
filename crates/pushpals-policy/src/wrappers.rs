//! Programs that run other programs, and programs whose arguments are
//! programs of their own (sed and awk scripts).
//!
//! Over 400 lines: every program that runs programs (wrappers, `find -exec`, sed and awk
//! scripts), with their tests.

use crate::shell::Word;

/// What a wrapper runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inner {
    /// Not a wrapper.
    None,
    /// It runs this command (maybe with extra run-time arguments).
    Command {
        /// The wrapped command.
        argv: Vec<Word>,
        /// Assignments the wrapper makes (`env X=1 cmd`).
        assignments: Vec<(String, Word)>,
    },
    /// It runs a shell script given as text (`sh -c '...'`).
    Script(Word),
    /// It runs several commands (`find -exec`), and itself with these
    /// arguments.
    Several {
        /// The commands.
        commands: Vec<Vec<Word>>,
        /// The wrapper's own arguments without the commands.
        own_argv: Vec<Word>,
    },
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"];

/// Options of `timeout`, `nice`, `stdbuf`, `ionice`, `xargs`, `env` that
/// take a separate value.
fn takes_value(program: &str, option: &str) -> bool {
    match program {
        "timeout" => matches!(option, "-s" | "--signal" | "-k" | "--kill-after"),
        "nice" => matches!(option, "-n" | "--adjustment"),
        "ionice" => matches!(option, "-c" | "-n" | "-p" | "-P" | "-u"),
        "stdbuf" => matches!(option, "-i" | "-o" | "-e"),
        "xargs" => matches!(
            option,
            "-n" | "-I"
                | "-i"
                | "-d"
                | "-L"
                | "-l"
                | "-P"
                | "-s"
                | "-E"
                | "-e"
                | "-a"
                | "--max-args"
                | "--replace"
                | "--delimiter"
                | "--max-lines"
                | "--max-procs"
                | "--max-chars"
                | "--eof"
                | "--arg-file"
        ),
        "env" => matches!(
            option,
            "-u" | "--unset" | "-C" | "--chdir" | "-S" | "--split-string"
        ),
        "command" | "exec" | "time" | "nohup" => matches!(option, "-a"),
        _ => false,
    }
}

/// Skips a wrapper's options; returns the index of the first non-option.
fn skip_options(program: &str, args: &[Word]) -> usize {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg.dynamic || !arg.text.starts_with('-') || arg.text == "-" {
            break;
        }
        if arg.text == "--" {
            return i + 1;
        }
        if takes_value(program, &arg.text) {
            i += 1;
        }
        i += 1;
    }
    i
}

/// What `argv` runs when its program is a wrapper.
pub fn inner(argv: &[Word]) -> Inner {
    let Some(program) = argv.first().filter(|w| !w.dynamic) else {
        return Inner::None;
    };
    let name = program.text.as_str();
    let args = &argv[1..];
    match name {
        "env" => {
            let mut i = skip_options(name, args);
            let mut assignments = Vec::new();
            while let Some(arg) = args.get(i) {
                match arg.text.split_once('=') {
                    Some((var, value)) if !arg.dynamic && !var.is_empty() => {
                        assignments.push((var.to_owned(), Word::literal(value)));
                        i += 1;
                    }
                    _ => break,
                }
            }
            if args
                .iter()
                .any(|a| !a.dynamic && (a.text == "-S" || a.text.starts_with("--split-string")))
            {
                // `env -S "a b"` splits a string into a command: run-time.
                return Inner::Command {
                    argv: vec![Word {
                        text: "env -S".into(),
                        dynamic: true,
                        glob: false,
                    }],
                    assignments,
                };
            }
            Inner::Command {
                argv: args[i.min(args.len())..].to_vec(),
                assignments,
            }
        }
        "timeout" => {
            let i = skip_options(name, args);
            // The duration, then the command.
            Inner::Command {
                argv: args.get(i + 1..).map(<[Word]>::to_vec).unwrap_or_default(),
                assignments: Vec::new(),
            }
        }
        "command" if args.iter().any(|a| a.text == "-v" || a.text == "-V") => Inner::None,
        "nice" | "nohup" | "stdbuf" | "ionice" | "time" | "command" | "exec" | "builtin"
        | "setsid" | "chronic" => {
            let i = skip_options(name, args);
            Inner::Command {
                argv: args.get(i..).map(<[Word]>::to_vec).unwrap_or_default(),
                assignments: Vec::new(),
            }
        }
        "xargs" => {
            let i = skip_options(name, args);
            let mut inner: Vec<Word> = args.get(i..).map(<[Word]>::to_vec).unwrap_or_default();
            if inner.is_empty() {
                inner.push(Word::literal("echo"));
            }
            // xargs appends what it reads: unknown until run time.
            inner.push(Word {
                text: "{xargs input}".into(),
                dynamic: true,
                glob: false,
            });
            Inner::Command {
                argv: inner,
                assignments: Vec::new(),
            }
        }
        shell if SHELLS.contains(&shell) => {
            let mut i = 0;
            while let Some(arg) = args.get(i) {
                if arg.dynamic || !arg.text.starts_with('-') {
                    break;
                }
                if arg.text.starts_with('-')
                    && arg.text.contains('c')
                    && !arg.text.starts_with("--")
                {
                    return match args.get(i + 1) {
                        Some(body) => Inner::Script(body.clone()),
                        None => Inner::None,
                    };
                }
                i += 1;
            }
            Inner::None
        }
        "find" => find_exec(argv),
        _ => Inner::None,
    }
}

/// `find ... -exec cmd {} ;`: the commands, and find's own arguments.
fn find_exec(argv: &[Word]) -> Inner {
    let mut commands = Vec::new();
    let mut own_argv = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let word = &argv[i];
        let starts_command =
            !word.dynamic && matches!(word.text.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir");
        if !starts_command {
            own_argv.push(word.clone());
            i += 1;
            continue;
        }
        let mut command = Vec::new();
        i += 1;
        while let Some(part) = argv.get(i) {
            i += 1;
            if !part.dynamic && (part.text == ";" || part.text == "+") {
                break;
            }
            if !part.dynamic && part.text.contains("{}") {
                command.push(Word {
                    text: part.text.clone(),
                    dynamic: true,
                    glob: false,
                });
            } else {
                command.push(part.clone());
            }
        }
        commands.push(command);
    }
    if commands.is_empty() {
        Inner::None
    } else {
        Inner::Several { commands, own_argv }
    }
}

/// Why a sed invocation is more than plain substitutions and deletions, or
/// `None` when it is plain. Scripts with `e`, `w`, `W`, `r`, `R` commands or
/// `e`/`w` flags run programs or touch other files.
pub fn sed_concern(argv: &[Word]) -> Option<String> {
    let args = &argv[1..];
    let mut scripts = Vec::new();
    let mut explicit = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if !arg.dynamic && (arg.text == "-e" || arg.text == "--expression") {
            explicit = true;
            if let Some(script) = args.get(i + 1) {
                scripts.push(script.clone());
            }
            i += 2;
            continue;
        }
        if !arg.dynamic && (arg.text == "-f" || arg.text.starts_with("--file")) {
            return Some("runs a sed script from a file".into());
        }
        if !arg.dynamic && arg.text.starts_with("--expression=") {
            explicit = true;
            scripts.push(Word::literal(&arg.text["--expression=".len()..]));
        }
        i += 1;
    }
    if !explicit && let Some(first) = args.iter().find(|a| a.dynamic || !a.text.starts_with('-')) {
        scripts.push(first.clone());
    }
    for script in scripts {
        if script.dynamic {
            return Some("its script is only known at run time".into());
        }
        if !plain_sed_script(&script.text) {
            return Some(format!(
                "its script {:?} is more than plain substitutions",
                script.text
            ));
        }
    }
    None
}

/// `s/a/b/g; 3d; /x/p` and the like: substitutions (flags g, i, I, p,
/// digits) and d / p commands, with optional line or regex addresses.
fn plain_sed_script(script: &str) -> bool {
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ';') {
            i += 1;
        }
        if i >= chars.len() {
            return true;
        }
        // Addresses: numbers, $, /regex/, separated by ','.
        loop {
            if i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '$') {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '$') {
                    i += 1;
                }
            } else if i < chars.len() && chars[i] == '/' {
                i += 1;
                while i < chars.len() && chars[i] != '/' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            if i < chars.len() && chars[i] == ',' {
                i += 1;
                continue;
            }
            break;
        }
        match chars.get(i) {
            Some('d' | 'p') => i += 1,
            Some('s') => {
                let Some(&delimiter) = chars.get(i + 1) else {
                    return false;
                };
                if delimiter.is_alphanumeric() || delimiter == '\\' || delimiter == '\n' {
                    return false;
                }
                i += 2;
                for _ in 0..2 {
                    while i < chars.len() && chars[i] != delimiter {
                        if chars[i] == '\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    if i >= chars.len() {
                        return false;
                    }
                    i += 1;
                }
                while i < chars.len() && matches!(chars[i], 'g' | 'i' | 'I' | 'p' | '0'..='9') {
                    i += 1;
                }
            }
            _ => return false,
        }
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        match chars.get(i) {
            None => return true,
            Some(';' | '\n') => {}
            Some(_) => return false,
        }
    }
}

/// Why an awk program may run programs or write files, or `None`.
pub fn awk_concern(argv: &[Word]) -> Option<String> {
    let args = &argv[1..];
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg.dynamic {
            return Some("its program is only known at run time".into());
        }
        match arg.text.as_str() {
            "-f" | "--file" => return Some("runs an awk program from a file".into()),
            text if text.starts_with("--file=") => {
                return Some("runs an awk program from a file".into());
            }
            // gawk's program given as an option's value.
            "-e" | "--source" => match args.get(i + 1) {
                Some(program) if !program.dynamic => {
                    if let Some(concern) = awk_program_concern(&program.text) {
                        return Some(concern);
                    }
                    i += 2;
                }
                _ => return Some("its program is only known at run time".into()),
            },
            text if text.starts_with("--source=") => {
                if let Some(concern) = awk_program_concern(&text["--source=".len()..]) {
                    return Some(concern);
                }
                i += 1;
            }
            "-v" | "-F" => i += 2,
            text if text.starts_with('-') => i += 1,
            program => return awk_program_concern(program),
        }
    }
    None
}

/// Why an awk program's text may run programs, load code or write files.
fn awk_program_concern(program: &str) -> Option<String> {
    let risky = ["system", "|", ">", "getline", "close(", "@load", "@include"];
    risky.iter().find(|r| program.contains(**r)).map(|r| {
        format!("its program uses {r:?}, which can run programs, load code or write files")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<Word> {
        line.iter().map(|w| Word::literal(*w)).collect()
    }

    #[test]
    fn plain_sed_scripts() {
        for plain in [
            "s/foo/bar/g",
            "s|a|b|",
            "1d",
            "/x/d; s/a/b/2",
            "$p",
            "s/a\\/b/c/gI",
            "1,3s/a/b/",
        ] {
            assert!(plain_sed_script(plain), "{plain}");
        }
        for risky in [
            "s/a/b/e",
            "s/a/b/w out",
            "e id",
            "w /etc/x",
            "r /etc/passwd",
            "1!G;h;$!d",
            "s/a/b",
            "y/ab/cd/",
        ] {
            assert!(!plain_sed_script(risky), "{risky}");
        }
    }

    #[test]
    fn wrappers_unwrap() {
        assert_eq!(
            inner(&words(&["timeout", "-k", "5", "30s", "rm", "x"])),
            Inner::Command {
                argv: words(&["rm", "x"]),
                assignments: vec![]
            }
        );
        let Inner::Command { argv, assignments } = inner(&words(&["env", "-i", "A=1", "make"]))
        else {
            panic!()
        };
        assert_eq!(argv, words(&["make"]));
        assert_eq!(assignments[0].0, "A");
        assert_eq!(
            inner(&words(&["bash", "-lc", "echo hi"])),
            Inner::Script(Word::literal("echo hi"))
        );
        assert_eq!(inner(&words(&["bash", "script.sh"])), Inner::None);
        let Inner::Several { commands, own_argv } =
            inner(&words(&["find", ".", "-exec", "rm", "{}", ";", "-print"]))
        else {
            panic!()
        };
        assert_eq!(commands[0][0], Word::literal("rm"));
        assert!(commands[0][1].dynamic);
        assert_eq!(own_argv, words(&["find", ".", "-print"]));
    }
}
