//! Shell builtins that set variables without `NAME=value` syntax
//! (`printf -v PATH ...`, `read PATH < f`, `declare -n ref=PATH`): their
//! names are judged like assignments.

use crate::shell::Word;

/// The variables a command sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sets {
    /// These names (maybe none).
    Names(Vec<String>),
    /// Names that cannot be known before running, and why.
    Unknown(String),
}

/// The variables `argv` sets when its program is such a builtin.
pub fn variables_set(argv: &[Word]) -> Sets {
    let Some(program) = argv.first().filter(|w| !w.dynamic) else {
        return Sets::Names(Vec::new());
    };
    let args = &argv[1..];
    match program.text.as_str() {
        "printf" => match args.first() {
            Some(flag) if !flag.dynamic && flag.text == "-v" => name_words(args.get(1).into_iter()),
            Some(flag) if !flag.dynamic && flag.text.starts_with("-v") => {
                Sets::Names(vec![flag.text[2..].to_owned()])
            }
            _ => Sets::Names(Vec::new()),
        },
        "read" => {
            // Options with a value; `-a NAME` names the array.
            let mut names = Vec::new();
            let mut i = 0;
            while let Some(arg) = args.get(i) {
                if arg.dynamic {
                    return unknown();
                }
                if arg.text.starts_with('-') && arg.text.len() > 1 {
                    let takes = arg.text.ends_with(['a', 'd', 'i', 'n', 'N', 'p', 't', 'u']);
                    if arg.text.ends_with('a')
                        && let Some(name) = args.get(i + 1)
                    {
                        names.push(name.clone());
                    }
                    i += if takes { 2 } else { 1 };
                    continue;
                }
                names.push(arg.clone());
                i += 1;
            }
            name_words(names.iter())
        }
        "getopts" => name_words(args.get(1).into_iter()),
        "declare" | "typeset" | "local" => {
            let nameref = args
                .iter()
                .any(|a| a.dynamic || (a.text.starts_with('-') && a.text.contains('n')));
            if nameref {
                Sets::Unknown(
                    "makes a name refer to another variable (`-n`), so what later assignments set is unknown"
                        .into(),
                )
            } else {
                Sets::Names(Vec::new())
            }
        }
        _ => Sets::Names(Vec::new()),
    }
}

fn unknown() -> Sets {
    Sets::Unknown("sets a variable whose name is only known at run time".into())
}

fn name_words<'a>(words: impl Iterator<Item = &'a Word>) -> Sets {
    let mut names = Vec::new();
    for word in words {
        if word.dynamic {
            return unknown();
        }
        names.push(word.text.clone());
    }
    Sets::Names(names)
}
