//! Duplicated blocks: runs of lines that repeat in the same shape (names
//! and literals ignored), which a shared function could serve.

use super::{Found, Tree};
use serde_json::json;
use std::collections::HashMap;

/// Lines a run needs at least.
const WINDOW: usize = 6;
/// Tokens a window needs at least (so that braces alone do not count).
const MIN_TOKENS: usize = 40;
/// Most findings reported.
const MAX_FINDINGS: usize = 20;
/// Source files compared.
const SOURCE: [&str; 12] = [
    ".rs", ".py", ".js", ".ts", ".tsx", ".go", ".java", ".c", ".cc", ".cpp", ".rb", ".kt",
];

/// A significant line: its number, shape and token count.
type Line = (usize, String, usize);
/// A place: a file's index and a line's index in it.
type Place = (usize, usize);

/// A line's shape: identifiers, numbers and strings replaced, spaces gone.
fn shape(line: &str) -> (String, usize) {
    let mut out = String::new();
    let mut tokens = 0;
    let mut chars = line.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        tokens += 1;
        if c == '"' || c == '\'' {
            while let Some(next) = chars.next() {
                if next == '\\' {
                    chars.next();
                } else if next == c {
                    break;
                }
            }
            out.push('S');
        } else if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '.' || *n == '_')
            {
                chars.next();
            }
            out.push('N');
        } else if c.is_alphabetic() || c == '_' {
            while chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || *n == '_')
            {
                chars.next();
            }
            out.push('I');
        } else {
            out.push(c);
        }
    }
    (out, tokens)
}

/// Significant lines of a file: (line number, shape, tokens).
fn lines(text: &str) -> Vec<Line> {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let (s, t) = shape(l);
            (i + 1, s, t)
        })
        .filter(|(_, s, _)| !s.is_empty() && !s.starts_with("//") && !s.starts_with('#'))
        .collect()
}

pub(crate) fn detect(tree: &Tree) -> Vec<Found> {
    let mut files: Vec<(String, Vec<Line>)> = Vec::new();
    for file in &tree.files {
        if !SOURCE.iter().any(|ext| file.ends_with(ext)) {
            continue;
        }
        if let Some(text) = tree.text(file) {
            files.push((file.clone(), lines(text)));
        }
    }
    // Window hash → where it starts (file index, index into its lines).
    let mut seen: HashMap<String, Vec<Place>> = HashMap::new();
    for (f, (_, significant)) in files.iter().enumerate() {
        if significant.len() < WINDOW {
            continue;
        }
        for start in 0..=significant.len() - WINDOW {
            let window = &significant[start..start + WINDOW];
            if window.iter().map(|(_, _, t)| t).sum::<usize>() < MIN_TOKENS {
                continue;
            }
            let key: String = window
                .iter()
                .map(|(_, s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            seen.entry(key).or_default().push((f, start));
        }
    }
    // Pairs of places, extended into runs.
    let mut runs: HashMap<(Place, Place), usize> = HashMap::new();
    let mut starts: Vec<(Place, Place)> = Vec::new();
    for places in seen.values().filter(|p| p.len() > 1) {
        // The first place, and the first other place that does not overlap it.
        let a = places[0];
        if let Some(&b) = places[1..]
            .iter()
            .find(|b| b.0 != a.0 || a.1.abs_diff(b.1) >= WINDOW)
        {
            starts.push((a, b));
        }
    }
    starts.sort();
    for (a, b) in starts {
        let before = ((a.0, a.1.wrapping_sub(1)), (b.0, b.1.wrapping_sub(1)));
        if let Some(length) = runs.remove(&before) {
            runs.insert((a, b), length + 1);
        } else {
            runs.insert((a, b), 1);
        }
    }
    // The runs, keyed by where they end; report where they start.
    let mut found: Vec<(usize, Found)> = runs
        .into_iter()
        .map(|((a, b), windows)| {
            let length = windows + WINDOW - 1;
            let (file_a, lines_a) = &files[a.0];
            let (file_b, lines_b) = &files[b.0];
            let first_a = lines_a[a.1 + 1 - windows].0;
            let first_b = lines_b[b.1 + 1 - windows].0;
            let shape: String = lines_a[a.1 + 1 - windows..=a.1 + WINDOW - 1]
                .iter()
                .map(|(_, s, _)| s.as_str())
                .collect();
            let digest = {
                use sha2::{Digest, Sha256};
                hex::encode(&Sha256::digest(shape.as_bytes())[..8])
            };
            (
                length,
                Found {
                    kind: "duplicate_code",
                    severity: "low",
                    title: format!("{length} lines here repeat the shape of {file_b}:{first_b}"),
                    file: Some(file_a.clone()),
                    line: Some(first_a as u64),
                    key: format!("{file_b}:{digest}"),
                    evidence: json!({ "other_file": file_b, "other_line": first_b, "lines": length }),
                },
            )
        })
        .collect();
    found.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.file.cmp(&y.1.file)));
    found
        .into_iter()
        .take(MAX_FINDINGS)
        .map(|(_, f)| f)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_literals_do_not_change_a_shape() {
        assert_eq!(
            shape("let total = price * 3 + \"x\";").0,
            shape("let sum = cost * 7 + 'y';").0
        );
        assert_ne!(shape("a + b").0, shape("a - b").0);
    }
}
