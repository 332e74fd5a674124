//! Risky CI and container configuration: `pull_request_target` workflows
//! that check out the pull request, write-all permissions, actions not
//! pinned to a commit, downloads piped into a shell, containers running as
//! root, TLS verification turned off.

use super::{Found, Tree};
use serde_json::json;

fn found(
    severity: &'static str,
    title: &str,
    file: &str,
    line: usize,
    key: &str,
    excerpt: &str,
) -> Found {
    Found {
        kind: "ci_config",
        severity,
        title: title.to_owned(),
        file: Some(file.to_owned()),
        line: Some(line as u64),
        key: key.to_owned(),
        evidence: json!({ "excerpt": excerpt.trim() }),
    }
}

fn is_workflow(file: &str) -> bool {
    file.starts_with(".github/workflows/") && (file.ends_with(".yml") || file.ends_with(".yaml"))
}

fn is_dockerfile(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file);
    name == "Dockerfile" || name.starts_with("Dockerfile.") || name.ends_with(".Dockerfile")
}

/// Whether a line (its continuations joined) pipes a download into a
/// shell: `curl ... | sh`, `wget -O- ... | sudo bash`.
fn pipes_download_into_shell(line: &str) -> bool {
    let lower = line.to_lowercase();
    let Some(fetch) = ["curl ", "wget "]
        .iter()
        .filter_map(|f| lower.find(f))
        .min()
    else {
        return false;
    };
    lower[fetch..].split('|').skip(1).any(|stage| {
        let mut words = stage.split_whitespace();
        let mut program = words.next().unwrap_or("");
        if program == "sudo" {
            program = words.find(|w| !w.starts_with('-')).unwrap_or("");
        }
        let program = program.rsplit('/').next().unwrap_or(program);
        matches!(
            program,
            "sh" | "bash" | "zsh" | "dash" | "ksh" | "python" | "python3" | "perl"
        )
    })
}

/// The file's lines with backslash continuations joined, each with the
/// number of its first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let (number, mut joined) = current.take().unwrap_or((index + 1, String::new()));
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                current = Some((number, joined));
            }
            None => {
                joined.push_str(line);
                lines.push((number, joined));
            }
        }
    }
    lines.extend(current);
    lines
}

fn curl_pipe_sh(file: &str, text: &str, out: &mut Vec<Found>) {
    for (number, line) in logical_lines(text) {
        if pipes_download_into_shell(&line) {
            out.push(found(
                "medium",
                "A download is piped into a shell; fetch, verify a checksum, then run",
                file,
                number,
                &format!("curl-pipe-sh:{}", line.trim()),
                &line,
            ));
        }
    }
}

fn workflow(file: &str, text: &str, out: &mut Vec<Found>) {
    curl_pipe_sh(file, text, out);
    let target = text.lines().any(|l| l.contains("pull_request_target"));
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        if target && trimmed.contains("github.event.pull_request.head") {
            out.push(found(
                "high",
                "A pull_request_target workflow checks out the pull request's code: it runs untrusted code with the repository's secrets",
                file, number, "pr-target-checkout", line,
            ));
        }
        if trimmed.starts_with("permissions:") && trimmed.contains("write-all") {
            out.push(found(
                "medium",
                "The workflow grants write-all permissions; grant only what each job needs",
                file,
                number,
                "write-all",
                line,
            ));
        }
        if let Some(action) = trimmed
            .strip_prefix("- uses:")
            .or_else(|| trimmed.strip_prefix("uses:"))
        {
            // `owner/repo@<sha> # v4.2.2`: the comment names the tag.
            let action = action
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(['"', '\'']);
            if action.starts_with("./") || action.starts_with("docker://") {
                continue;
            }
            let pinned = action
                .rsplit_once('@')
                .is_some_and(|(_, r)| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()));
            if !pinned {
                out.push(found(
                    "medium",
                    &format!("The action {action} is not pinned to a commit; a moved tag can change what runs"),
                    file, number, &format!("unpinned:{action}"), line,
                ));
            }
        }
    }
}

fn dockerfile(file: &str, text: &str, out: &mut Vec<Found>) {
    let mut user = false;
    for line in text.lines() {
        let lower = line.to_lowercase();
        if lower.trim_start().starts_with("user ") {
            user = !lower.contains("root");
        }
    }
    curl_pipe_sh(file, text, out);
    if !user {
        out.push(found(
            "low",
            "The container runs as root: add a USER",
            file,
            1,
            "runs-as-root",
            "no USER instruction",
        ));
    }
}

const TLS_OFF: [&str; 6] = [
    "verify=False",
    "NODE_TLS_REJECT_UNAUTHORIZED=0",
    "InsecureSkipVerify: true",
    "sslVerify false",
    "--insecure",
    "curl -k ",
];

fn tls_off(file: &str, text: &str, out: &mut Vec<Found>) {
    for (index, line) in text.lines().enumerate() {
        if let Some(pattern) = TLS_OFF.iter().find(|p| line.contains(*p)) {
            out.push(found(
                "medium",
                "TLS certificate verification is turned off",
                file,
                index + 1,
                &format!("tls-off:{pattern}"),
                line,
            ));
        }
    }
}

/// Runs the configuration checks over the tree.
pub(crate) fn detect(tree: &Tree) -> Vec<Found> {
    let mut out = Vec::new();
    for file in &tree.files {
        let config_like = is_workflow(file)
            || is_dockerfile(file)
            || [
                ".yml", ".yaml", ".sh", ".py", ".js", ".ts", ".go", ".toml", ".cfg",
            ]
            .iter()
            .any(|ext| file.ends_with(ext));
        if !config_like {
            continue;
        }
        let Some(text) = tree.text(file) else {
            continue;
        };
        if is_workflow(file) {
            workflow(file, text, &mut out);
        }
        if is_dockerfile(file) {
            dockerfile(file, text, &mut out);
        }
        tls_off(file, text, &mut out);
    }
    out
}
