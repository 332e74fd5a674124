//! `service install|uninstall`.

use super::support::BIN;
use pushpals_test_support::TempRepo;

fn service(config_home: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .arg("service")
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .output()
        .unwrap()
}

#[test]
fn a_user_unit_is_written_once_verified_and_removed() {
    let repo = TempRepo::new();
    let home = tempfile::tempdir().unwrap();
    let repo_arg = repo.path.to_str().unwrap();
    let installed = service(home.path(), &["install", "--repo", repo_arg]);
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(String::from_utf8_lossy(&installed.stdout).contains("systemctl --user daemon-reload"));
    let unit = home.path().join("systemd/user/pushpals.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let canonical = repo.path.canonicalize().unwrap();
    assert!(
        text.contains(&format!(
            "serve --repo {} --addr 127.0.0.1:7777",
            canonical.display()
        )),
        "{text}"
    );
    for line in [
        "NoNewPrivileges=yes",
        "LimitNOFILE=65536",
        "PrivateTmp=yes",
        "UMask=0077",
        "WantedBy=default.target",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(!text.contains("User="), "a user unit runs as its user");
    if std::path::Path::new("/usr/bin/systemd-analyze").exists() {
        let verified = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&unit)
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}",
            String::from_utf8_lossy(&verified.stderr)
        );
    }

    let again = service(home.path(), &["install", "--repo", repo_arg]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert!(
        service(home.path(), &["install", "--repo", repo_arg, "--force"])
            .status
            .success()
    );

    assert!(service(home.path(), &["uninstall"]).status.success());
    assert!(!unit.exists());
    let gone = service(home.path(), &["uninstall"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("nothing to remove"));

    let root = service(home.path(), &["install", "--repo", repo_arg, "--system"]);
    assert!(!root.status.success());
    assert!(String::from_utf8_lossy(&root.stderr).contains("never needs to run as root"));
    let missing = service(home.path(), &["install", "--repo", "/nonexistent/repo"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}
