//! Real projects and their toolchains in the sandbox: itoa's own test
//! suite (Rust, with a dev-dependency, after `cargo fetch`) as a task's
//! check, warm from the second task on; the checks tried before any task;
//! a toolchain added by hand.

use super::support::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `../shared/repos/<name>.bundle`, cloned at `main` into `dir`.
pub(super) fn clone_bundle(name: &str, dir: &Path) -> std::path::PathBuf {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/repos")
        .join(format!("{name}.bundle"));
    assert!(bundle.exists(), "{} is missing", bundle.display());
    let target = dir.join(name);
    let cloned = Command::new("git")
        .args(["clone", "-q", "-b", "main"])
        .arg(&bundle)
        .arg(&target)
        .status()
        .unwrap();
    assert!(cloned.success());
    target
}

pub(super) fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// itoa cloned into `dir` with its own tests (`cargo test --offline`) as
/// the check (its README as an artifact), and a cargo home of its own with its crates fetched (for a
/// worker host's toolchain): the clone and the cargo home.
pub(super) fn itoa_with_its_tests(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let repo = clone_bundle("itoa", dir);
    std::fs::write(
        repo.join("pushpals.toml"),
        "[checks]\ntest = \"cargo test --offline\"\nartifacts = [\"README.md\"]\n",
    )
    .unwrap();
    git(&repo, &["add", "pushpals.toml"]);
    git(&repo, &["commit", "-q", "-m", "checks"]);
    let cargo_home = dir.join("cargo-home");
    std::fs::create_dir_all(&cargo_home).unwrap();
    let fetched = Command::new("cargo")
        .args(["fetch", "-q"])
        .current_dir(&repo)
        .env("CARGO_HOME", &cargo_home)
        .status()
        .unwrap();
    assert!(fetched.success(), "cargo fetch");
    (repo, cargo_home)
}

/// The duration of a task's `check:test` command, in milliseconds.
pub(super) fn check_millis(events: &[serde_json::Value]) -> u64 {
    events
        .iter()
        .find(|e| e["kind"] == "command_finished" && e["payload"]["step"] == "check:test")
        .and_then(|e| e["payload"]["duration_ms"].as_u64())
        .expect("the test check ran")
}

/// Asserts the task's test check passed with no command approval asked.
pub(super) fn assert_check_passed_unasked(events: &[serde_json::Value]) {
    let check = events
        .iter()
        .find(|e| e["kind"] == "check_result")
        .expect("the test check ran");
    assert_eq!(check["payload"]["passed"], true, "{check}");
    assert!(
        !events.iter().any(|e| e["kind"] == "approval_requested"
            && e["payload"]["action"] == "command"
            && e["payload"]["detail"]["step"] != "setup"),
        "the project's own tests needed an approval"
    );
}

#[test]
fn itoas_own_tests_pass_in_the_sandbox_after_cargo_fetch_and_the_second_task_is_warm() {
    let dir = tempfile::tempdir().unwrap();
    let repo = clone_bundle("itoa", dir.path());
    // The person's checks, committed as they would commit them.
    std::fs::write(
        repo.join("pushpals.toml"),
        "[checks]\ntest = \"cargo test --offline\"\n",
    )
    .unwrap();
    git(&repo, &["add", "pushpals.toml"]);
    git(&repo, &["commit", "-q", "-m", "checks"]);
    // The toolchain as its README has it: cargo, then `cargo fetch`, in a
    // cargo home of this test's own (with a credential planted in it).
    let cargo_home = dir.path().join("cargo-home");
    std::fs::create_dir_all(&cargo_home).unwrap();
    std::fs::write(
        cargo_home.join("credentials.toml"),
        "[registry]\ntoken = \"planted-secret\"\n",
    )
    .unwrap();
    let fetched = Command::new("cargo")
        .args(["fetch", "-q"])
        .current_dir(&repo)
        .env("CARGO_HOME", &cargo_home)
        .status()
        .unwrap();
    assert!(fetched.success(), "cargo fetch");

    let data = tempfile::tempdir().unwrap();
    let home = cargo_home.to_str().unwrap();
    let server = start_server_with_env(&repo, data.path(), &[("CARGO_HOME", home)]);
    // One task: a one-line change, and a look at what the sandbox sees of
    // the cargo home (the registry, never the credentials).
    let first = server.json(&[
        "task",
        "Reword the README",
        "--run",
        "sed -i '1s/$/ (edited)/' README.md && ls -a \"$CARGO_HOME\" > seen.txt; \
         test ! -e \"$CARGO_HOME/credentials.toml\" && echo hidden >> seen.txt",
    ]);
    let first = first["id"].as_str().unwrap().to_owned();
    let view = server.wait_for_state_within(&first, "awaiting_approval", Duration::from_secs(600));
    let events = server.events(&first);
    assert_check_passed_unasked(&events);
    let built = events
        .iter()
        .find(|e| e["kind"] == "cache_built")
        .expect("the first task built the warm cache");
    assert!(
        built["payload"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "target"),
        "{built}"
    );
    assert_eq!(
        built["payload"]["warm_checks"][0]["passed"], true,
        "{built}"
    );
    let worktree = view["task"]["worktree_path"].as_str().unwrap();
    let seen = std::fs::read_to_string(Path::new(worktree).join("seen.txt")).unwrap();
    assert!(seen.contains("registry"), "{seen}");
    assert!(
        seen.contains("hidden"),
        "the credentials were visible: {seen}"
    );

    // The second task starts from the cache (a copy: what it writes into
    // its target/ never reaches the cache) and its check is incremental.
    let key = built["payload"]["key"].as_str().unwrap();
    let cache_target = super::caches_dir(data.path())
        .join(key)
        .join("outputs/target");
    let (second, _) = server.task_until(
        "Touch the code",
        "sed -i '1s/^/\\/\\/ touched\\n/' src/lib.rs && touch target/poisoned",
        "awaiting_approval",
    );
    let events = server.events(&second);
    assert_check_passed_unasked(&events);
    assert!(!events.iter().any(|e| e["kind"] == "cache_built"));
    let used = events
        .iter()
        .find(|e| e["kind"] == "cache_used")
        .expect("the second task got the warm cache");
    assert_eq!(used["payload"]["key"], key);
    assert!(cache_target.is_dir());
    assert!(
        !cache_target.join("poisoned").exists(),
        "a task wrote into the cache"
    );
    let warm = check_millis(&events);

    // The host's own incremental build of the same change, for comparison.
    let host = |args: &[&str]| {
        let started = std::time::Instant::now();
        let status = Command::new("cargo")
            .args(args)
            .current_dir(&repo)
            .env("CARGO_HOME", &cargo_home)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "cargo {args:?}");
        started.elapsed().as_millis()
    };
    host(&["test", "--offline"]);
    let lib = repo.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("// touched\n{text}")).unwrap();
    let incremental = host(&["test", "--offline"]);
    println!(
        "itoa check, second task: {warm} ms in the sandbox; host incremental {incremental} ms; ratio {:.2}",
        warm as f64 / incremental.max(1) as f64
    );
}

#[test]
fn trying_the_checks_says_which_pass_and_why_the_others_do_not() {
    let repo = pushpals_test_support::TempRepo::new();
    repo.write(
        "pushpals.toml",
        "[checks]\nbuild = \"true\"\nlint = \"hadolint Dockerfile\"\ntest = \"make test\"\n",
    );
    repo.write(
        "Makefile",
        "test:\n\t@echo 'test math::adds ... FAILED'; exit 1\n",
    );
    repo.commit_all("checks");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&repo.path, data.path());
    let tried = server.cli().arg("checks").output().unwrap();
    let text = String::from_utf8_lossy(&tried.stdout);
    assert_eq!(tried.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ok    build: `true` passes in the sandbox"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  lint: `hadolint Dockerfile`")
            && text.contains("`hadolint` is not installed on this machine"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  test: `make test`") && text.contains("it ran and failed (exit 2)"),
        "{text}"
    );
    assert!(text.contains("| test math::adds ... FAILED"), "{text}");
    // And doctor no longer says all is well.
    let doctor = server.cli().args(["doctor", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(report["healthy"], false, "{report}");
    let lint = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "check lint")
        .cloned()
        .unwrap_or_default();
    assert!(
        lint["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not installed"),
        "{report}"
    );
}

#[test]
fn a_toolchain_installed_elsewhere_is_added_read_only_and_credentials_are_refused() {
    let tools = tempfile::tempdir().unwrap();
    let tool = tools.path().join("mytool");
    std::fs::create_dir_all(tool.join("bin")).unwrap();
    std::fs::write(tool.join("bin/mytool-version"), "1.2.3\n").unwrap();
    let repo = pushpals_test_support::TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    write_config(
        data.path(),
        &format!(
            "[sandbox]\nread_only_paths = [\"{}\"]\npass_env = [\"MYTOOL_HOME\"]\n",
            tool.display()
        ),
    );
    let home = tool.to_str().unwrap();
    let server = start_server_with_env(&repo.path, data.path(), &[("MYTOOL_HOME", home)]);
    let (_, view) = server.task_until(
        "Look",
        &format!(
            "cat {}/bin/mytool-version > seen.txt; echo \"$MYTOOL_HOME\" >> seen.txt; touch {}/bin/x 2>> seen.txt || echo read-only >> seen.txt",
            tool.display(),
            tool.display()
        ),
        "awaiting_approval",
    );
    let worktree = view["task"]["worktree_path"].as_str().unwrap();
    let seen = std::fs::read_to_string(Path::new(worktree).join("seen.txt")).unwrap();
    assert!(seen.starts_with("1.2.3\n"), "{seen}");
    assert!(seen.contains(home), "{seen}");
    assert!(seen.contains("read-only"), "{seen}");
    assert!(!tool.join("bin/x").exists());
    drop(server);

    // A path that holds credentials, or a variable that looks like a
    // secret, stops the server at start with the reason.
    std::fs::create_dir_all(tools.path().join(".ssh")).unwrap();
    for (config, why) in [
        (
            format!(
                "[sandbox]\nread_only_paths = [\"{}\"]\n",
                tools.path().display()
            ),
            "holds .ssh",
        ),
        (
            "[sandbox]\npass_env = [\"GITHUB_TOKEN\"]\n".to_owned(),
            "looks like a secret",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        write_config(data.path(), &config);
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(&repo.path);
        isolated(&mut command, data.path());
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{config}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(why), "{config}: {stderr}");
    }
}
