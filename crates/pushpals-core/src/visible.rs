//! Text a person decides on, made exact: bidirectional controls,
//! zero-width and other invisible characters, and control characters are
//! shown as escapes (`\u{202E}`) instead of acting on the text around them.
//!
//! A command containing U+202E can look like `python3 cleanup.py --dry-run`
//! while it runs something else; a title with an escape sequence can
//! rewrite a terminal. Everything shown for a decision (approval cards,
//! chat replies, notifications, the CLI) goes through [`visible`]; the
//! CLI's output of untrusted text goes through [`for_terminal`].

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must be shown as an escape: C0 and C1 controls (but tab and
/// newline), DEL, bidirectional controls and marks, zero-width and other
/// default-ignorable format characters, invisible fillers, and tags.
pub fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}'
        | '\u{B}'..='\u{1F}'
        | '\u{7F}'..='\u{9F}'
        | '\u{AD}'          // soft hyphen
        | '\u{34F}'         // combining grapheme joiner
        | '\u{61C}'         // Arabic letter mark
        | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
        | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}' // zero-width, LRM, RLM
        | '\u{2028}' | '\u{2029}' // line and paragraph separators
        | '\u{202A}'..='\u{202E}' // embeddings and overrides
        | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, isolates
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E007F}' // tags
    )
}

/// `text` with every hidden character ([`is_hidden`]) written as
/// `\u{XXXX}`; borrowed when there is none.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        push_shown(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_shown(out: &mut String, c: char) {
    if is_hidden(c) {
        let _ = write!(out, "\\u{{{:04X}}}", u32::from(c));
    } else {
        out.push(c);
    }
}

/// Untrusted text for a terminal: colour sequences (`ESC [ ... m`) are
/// dropped, every other escape sequence and hidden character is shown as an
/// escape, so output cannot move the cursor, retitle the window or hide
/// text.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\u{1B}'
            && let Some(len) = colour_sequence_len(rest)
        {
            rest = &rest[len..];
            continue;
        }
        push_shown(&mut out, c);
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// The length of an SGR sequence (`ESC [ digits;... m`) at the start.
fn colour_sequence_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix("\u{1B}[")?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_zero_width_characters_are_shown() {
        let spoof = "python3 cleanup.py \u{202E}nur-yrd--\u{202C} --force";
        assert_eq!(
            visible(spoof),
            "python3 cleanup.py \\u{202E}nur-yrd--\\u{202C} --force"
        );
        assert_eq!(visible("a\u{200B}b\u{FEFF}"), "a\\u{200B}b\\u{FEFF}");
        assert_eq!(visible("tag\u{E0041}"), "tag\\u{E0041}");
        assert_eq!(visible("bell\u{7}"), "bell\\u{0007}");
    }

    #[test]
    fn plain_text_tabs_newlines_and_scripts_stay() {
        let plain = "cargo test\n\tok — ünïcödé שלום مرحبا 😀";
        assert!(matches!(visible(plain), Cow::Borrowed(_)));
        assert!(matches!(for_terminal(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn terminals_lose_colours_and_see_other_sequences() {
        assert_eq!(for_terminal("\u{1B}[1;31merror\u{1B}[0m: x"), "error: x");
        assert_eq!(
            for_terminal("\u{1B}]0;pwned\u{7}\u{1B}[2J\r"),
            "\\u{001B}]0;pwned\\u{0007}\\u{001B}[2J\\u{000D}"
        );
        assert_eq!(for_terminal("\u{1B}[m"), "");
        assert_eq!(for_terminal("\u{1B}["), "\\u{001B}[");
    }
}
