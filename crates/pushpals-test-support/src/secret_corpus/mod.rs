//! A corpus for scoring secret detection, made afresh from a fixed seed:
//! realistic files of many formats (source in several languages, `.env`,
//! YAML, JSON, TOML, INI, Terraform, Dockerfiles, notebooks, shell
//! history, `.netrc`, `.npmrc`, Docker config, kubeconfig, CI workflows,
//! HTTP examples, logs) with planted secrets of many kinds, each labelled
//! with its line, and files of hard negatives that hold none. Every value
//! is random: no real key is in it.

mod negatives;
mod positives;

/// One file of the corpus.
#[derive(Debug, Clone)]
pub struct CorpusFile {
    /// Its path in the corpus.
    pub path: String,
    /// Its content.
    pub content: String,
    /// The secrets planted in it (none for a negative).
    pub secrets: Vec<PlantedSecret>,
}

/// A secret planted on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedSecret {
    /// The line, from 1.
    pub line: usize,
    /// Its kind.
    pub kind: &'static str,
}

/// How a detector did on the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Planted secrets whose line has a finding, of all planted.
    pub line_recall: f64,
    /// Files with secrets where one of them was found, of all such files.
    pub file_recall: f64,
    /// Files without secrets that have a finding.
    pub false_positive_files: Vec<String>,
    /// Planted secrets not found: file, line, kind.
    pub missed: Vec<(String, usize, &'static str)>,
    /// How many kinds were planted.
    pub kinds: usize,
    /// How many files there are.
    pub files: usize,
}

/// The corpus for `seed`.
pub fn secret_corpus(seed: u64) -> Vec<CorpusFile> {
    let mut rng = Rng(seed);
    let mut files = positives::files(&mut rng);
    files.extend(negatives::files(&mut rng));
    files
}

/// Scores `detect` (a file's path and content to the lines it finds
/// secrets on, from 1; 0 for the file itself) on `corpus`.
pub fn score(corpus: &[CorpusFile], detect: impl Fn(&str, &str) -> Vec<usize>) -> Score {
    let (mut planted, mut found, mut files_with, mut files_found) = (0usize, 0usize, 0, 0);
    let mut false_positive_files = Vec::new();
    let mut missed = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for file in corpus {
        let lines = detect(&file.path, &file.content);
        if file.secrets.is_empty() {
            if !lines.is_empty() {
                false_positive_files.push(file.path.clone());
            }
            continue;
        }
        files_with += 1;
        let mut any = false;
        for secret in &file.secrets {
            planted += 1;
            kinds.insert(secret.kind);
            // A finding about the file itself (its name) counts for each
            // secret in it.
            if lines.contains(&secret.line) || lines.contains(&0) {
                found += 1;
                any = true;
            } else {
                missed.push((file.path.clone(), secret.line, secret.kind));
            }
        }
        if any {
            files_found += 1;
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Score {
        line_recall: ratio(found, planted),
        file_recall: ratio(files_found, files_with),
        false_positive_files,
        missed,
        kinds: kinds.len(),
        files: corpus.len(),
    }
}

/// A small deterministic generator (splitmix64): the same seed, the same
/// corpus, on every machine.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `n` characters drawn from `alphabet`.
    pub(crate) fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let alphabet: Vec<char> = alphabet.chars().collect();
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }

    pub(crate) fn alnum(&mut self, n: usize) -> String {
        self.chars(ALNUM, n)
    }

    pub(crate) fn hex(&mut self, n: usize) -> String {
        self.chars("0123456789abcdef", n)
    }

    pub(crate) fn digits(&mut self, n: usize) -> String {
        self.chars("0123456789", n)
    }

    /// One of `items`.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random UUID's text.
    pub(crate) fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-{}{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.pick(&["8", "9", "a", "b"]),
            self.hex(3),
            self.hex(12)
        )
    }

    /// A password a person might choose: words, digits and a symbol.
    pub(crate) fn password(&mut self) -> String {
        let word = *self.pick(&[
            "Falcon", "river", "Quartz", "maple", "Orbit", "tiger", "Nimbus",
        ]);
        let other = *self.pick(&["Stone", "blue", "Vault", "night", "Copper", "lake"]);
        let symbol = *self.pick(&["!", "#", "$", "%", "&", "*", "@"]);
        format!("{word}{symbol}{other}{}{}", self.digits(3), self.alnum(4))
    }
}

pub(crate) const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(crate) const BASE64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 of `bytes`, with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    let table: Vec<char> = BASE64.chars().collect();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(table[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Builds a file from lines, one of which may hold `{S}`: the secret goes
/// there and that line is labelled.
pub(crate) fn planted(
    path: String,
    template: &str,
    secret: &str,
    kind: &'static str,
) -> CorpusFile {
    let mut secrets = Vec::new();
    let mut content = String::new();
    for (number, line) in template.lines().enumerate() {
        if line.contains("{S}") {
            secrets.push(PlantedSecret {
                line: number + 1,
                kind,
            });
        }
        content.push_str(&line.replace("{S}", secret));
        content.push('\n');
    }
    CorpusFile {
        path,
        content,
        secrets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_corpus_and_each_file_is_labelled() {
        let one = secret_corpus(7);
        let two = secret_corpus(7);
        assert_eq!(one.len(), two.len());
        assert!(one.iter().zip(&two).all(|(a, b)| a.content == b.content));
        let kinds: std::collections::BTreeSet<_> = one
            .iter()
            .flat_map(|f| f.secrets.iter().map(|s| s.kind))
            .collect();
        assert!(kinds.len() >= 40, "{} kinds", kinds.len());
        let negatives = one.iter().filter(|f| f.secrets.is_empty()).count();
        assert!(negatives >= 60, "{negatives} negatives");
        let mut paths: Vec<_> = one.iter().map(|f| &f.path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), one.len(), "paths repeat");
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn scoring_counts_lines_files_and_false_positives() {
        let corpus = vec![
            planted("a".into(), "x\n{S}\n{S}\n", "k", "kind"),
            planted("b".into(), "{S}\n", "k", "kind"),
            planted("n".into(), "nothing\n", "", "kind"),
        ];
        let score = score(&corpus, |path, _| match path {
            "a" => vec![2],
            "n" => vec![1],
            _ => vec![],
        });
        assert!((score.line_recall - 1.0 / 3.0).abs() < 1e-9);
        assert!((score.file_recall - 0.5).abs() < 1e-9);
        assert_eq!(score.false_positive_files, ["n"]);
        assert_eq!(score.missed.len(), 2);
    }
}
