//! How a program's option is written in the hazard table, and whether an
//! argument is that option: long options with GNU's and git's
//! abbreviations, letters inside bundles, and whole single-dash words.

/// How an option is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OptionForm {
    /// `--name`; any abbreviation at least as long as `min` counts, as
    /// GNU's and git's option parsers accept unambiguous abbreviations.
    Long { min: String, full: String },
    /// `-x`, also inside a bundle (`-xvf`).
    Short(char),
    /// `-name` or `--name`, whole (Go's flags, zip's `-TT`).
    Word(String),
}

impl OptionForm {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if let Some(long) = text.strip_prefix("--") {
            let (min, rest) = match long.split_once('[') {
                Some((min, rest)) => (min, rest.strip_suffix(']').ok_or("an unclosed `[`")?),
                None => (long, ""),
            };
            if min.is_empty() {
                return Err("an empty long option".into());
            }
            return Ok(Self::Long {
                min: min.to_owned(),
                full: format!("{min}{rest}"),
            });
        }
        let Some(short) = text.strip_prefix('-') else {
            return Err("an option must start with `-`".into());
        };
        let mut chars = short.chars();
        match (chars.next(), chars.next()) {
            (Some(letter), None) => Ok(Self::Short(letter)),
            (Some(_), Some(_)) => Ok(Self::Word(short.to_owned())),
            (None, _) => Err("an empty option".into()),
        }
    }

    /// Whether `word` (an argument) is this option; the value attached to
    /// it (`--x=v`, `-xv`), if any.
    pub(crate) fn find<'a>(&self, word: &'a str) -> Option<Option<&'a str>> {
        match self {
            Self::Long { min, full } => {
                let long = word.strip_prefix("--")?;
                let (name, value) = match long.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (long, None),
                };
                (name.len() >= min.len() && full.starts_with(name)).then_some(value)
            }
            Self::Short(letter) => {
                let bundle = word.strip_prefix('-').filter(|b| !b.starts_with('-'))?;
                let at = bundle.find(*letter)?;
                let rest = &bundle[at + letter.len_utf8()..];
                Some((!rest.is_empty()).then_some(rest))
            }
            Self::Word(name) => {
                let bare = word.strip_prefix("--").or_else(|| word.strip_prefix('-'))?;
                match bare.strip_prefix(name.as_str())? {
                    "" => Some(None),
                    rest => rest.strip_prefix('=').map(Some),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn option_forms_match_abbreviations_bundles_and_words() {
        let long = OptionForm::parse("--to-[command]").unwrap();
        assert_eq!(long.find("--to-command=id"), Some(Some("id")));
        assert_eq!(long.find("--to-c"), Some(None));
        assert_eq!(long.find("--t"), None);
        assert_eq!(long.find("--totals"), None);
        let short = OptionForm::parse("-I").unwrap();
        assert_eq!(short.find("-cI"), Some(None));
        assert_eq!(short.find("-Izstd"), Some(Some("zstd")));
        assert_eq!(short.find("--Index"), None);
        let word = OptionForm::parse("-toolexec").unwrap();
        assert_eq!(word.find("-toolexec=x"), Some(Some("x")));
        assert_eq!(word.find("--toolexec"), Some(None));
        assert_eq!(word.find("-toolexecx"), None);
        for bad in ["x", "--", "--a[b", "-"] {
            assert!(OptionForm::parse(bad).is_err(), "{bad}");
        }
    }
}
