//! What attacking Push Pals found, seen from the command line: programs
//! run through allowed tools' exec options, lines read as bash but run by
//! another shell, and text that spoofs what a person decides on.

use super::support::*;

#[test]
fn exec_options_of_allowed_tools_wait_for_the_person_and_do_not_run() {
    let (_repo, _data, server) = served();
    for (title, line) in [
        (
            "Tar checkpoint",
            "tar -cf a.tar --checkpoint=1 --checkpoint-action=exec='touch pwned' README.md",
        ),
        (
            "Tar options",
            "TAR_OPTIONS='--to-command=touch pwned' tar -xf x.tar",
        ),
        ("Ripgrep pre", "rg --pre ./pre.sh demo README.md"),
        (
            "Sort compressor",
            "sort --compress-program='touch pwned' -S 1 README.md",
        ),
        (
            "Git grep pager",
            "git grep --open-files-in-pager='touch pwned' demo",
        ),
    ] {
        let task = server.json(&["task", title, "--run", line]);
        let id = task["id"].as_str().unwrap();
        let view = server.wait_for_state(id, "waiting");
        assert_eq!(view["approvals"][0]["action"], "command", "{line}");
        let worktree = view["task"]["worktree_path"].as_str().unwrap();
        assert!(
            !std::path::Path::new(worktree).join("pwned").exists(),
            "{line} ran before anyone approved it"
        );
        let started = server
            .events(id)
            .into_iter()
            .filter(|e| e["kind"] == "command_started")
            .count();
        assert_eq!(started, 0, "{line} started a command");
        // A waiting task holds a worker slot.
        assert!(
            server
                .cli()
                .args(["cancel", id])
                .output()
                .unwrap()
                .status
                .success()
        );
    }
}

#[test]
fn a_line_runs_with_bash_the_shell_policy_read_it_as() {
    let (_repo, _data, server) = served();
    let (id, _) = server.task_until(
        "Bash only",
        "[[ a == a ]] && x=(one two) && echo {a,b} ${x[1]} > out.txt",
        "awaiting_approval",
    );
    let diff = server.json(&["diff", &id]);
    assert!(
        diff["diff"].as_str().unwrap().contains("+a b two"),
        "{diff}"
    );
}

#[test]
fn hidden_characters_and_terminal_sequences_are_shown_not_obeyed() {
    let (_repo, _data, server) = served();
    // Reads as `--dry-run` when the override acts; runs `nur-yrd--`.
    let spoof = "frobnicate cleanup.py \u{202E}nur-yrd--\u{202C}";
    let task = server.json(&["task", "Clean \u{202E}pu", "--run", spoof]);
    let id = task["id"].as_str().unwrap().to_owned();
    server.wait_for_state(&id, "waiting");
    let status = server.cli().args(["status", &id]).output().unwrap();
    let text = String::from_utf8(status.stdout).unwrap();
    assert!(!text.contains('\u{202E}'), "{text}");
    assert!(
        text.contains("Clean \\u{202E}pu") && text.contains("\\u{202E}nur-yrd--\\u{202C}"),
        "{text}"
    );
    // The JSON keeps the exact text for programs.
    let view = server.json(&["status", &id]);
    assert_eq!(view["task"]["title"], "Clean \u{202E}pu");

    // Output that would retitle the terminal and clear the screen.
    let (noisy_id, _) = server.task_until(
        "Noisy",
        "printf '\\033]0;owned\\007\\033[2J\\033[31mred\\033[0m\\n' && echo x > f.txt",
        "awaiting_approval",
    );
    let log = server.cli().args(["log", &noisy_id]).output().unwrap();
    let text = String::from_utf8(log.stdout).unwrap();
    assert!(
        !text.contains('\u{1B}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("\\u{001B}]0;owned\\u{0007}"), "{text}");
    assert!(text.contains("red\n"), "{text}");
}
