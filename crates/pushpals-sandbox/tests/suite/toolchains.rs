//! Toolchains found under a home of the test's own: each is visible
//! read-only where its tools look for it, and the credentials that live
//! beside it are not visible at all.

use super::shell::stdout_of;
use pushpals_sandbox::{BwrapConfig, BwrapRunner, Limits};
use std::path::{Path, PathBuf};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn nvm_go_maven_gradle_and_cargo_are_seen_read_only_and_their_credentials_never() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    // nvm with two Nodes (a script stands for each), the default by alias.
    for version in ["v18.0.0", "v20.5.1"] {
        let node = home
            .join(".nvm/versions/node")
            .join(version)
            .join("bin/node");
        write(&node, &format!("#!/bin/sh\necho node {version}\n"));
        let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&node, executable).unwrap();
    }
    write(&home.join(".nvm/alias/default"), "18\n");
    write(
        &home.join("go/pkg/mod/example.com/m@v1/go.mod"),
        "module m\n",
    );
    write(&home.join(".m2/repository/org/x/x.pom"), "<project/>\n");
    write(
        &home.join(".m2/settings.xml"),
        "<password>planted-m2</password>\n",
    );
    write(&home.join(".gradle/caches/modules-2/files-2.1/x"), "jar\n");
    write(
        &home.join(".gradle/gradle.properties"),
        "token=planted-gradle\n",
    );
    write(&home.join(".cargo/registry/index/x"), "index\n");
    write(
        &home.join(".cargo/credentials.toml"),
        "token = \"planted-cargo\"\n",
    );

    let none = |_: &str| -> Option<PathBuf> { None };
    let config = BwrapConfig {
        limits: Limits::default(),
        ..BwrapConfig::default()
    }
    .with_toolchains_of(home, &none);
    let runner = BwrapRunner::new(config).unwrap();
    let worktree = tempfile::tempdir().unwrap();
    let seen = stdout_of(
        &runner,
        worktree.path(),
        "node; echo \"nvm=$NVM_DIR\"; cat \"$GOMODCACHE/example.com/m@v1/go.mod\"; \
         cat ~/.m2/repository/org/x/x.pom; ls \"$GRADLE_RO_DEP_CACHE\"; ls \"$CARGO_HOME\"; \
         for f in ~/.m2/settings.xml ~/.gradle/gradle.properties \"$CARGO_HOME/credentials.toml\"; do \
           test -e \"$f\" && echo \"VISIBLE $f\"; done; \
         touch \"$GOMODCACHE/new\" ~/.m2/repository/new 2>/dev/null || echo read-only",
    )
    .await;
    let nvm = home.join(".nvm");
    for expected in [
        "node v18.0.0\n".to_owned(),
        format!("nvm={}\n", nvm.display()),
        "module m\n".to_owned(),
        "<project/>\n".to_owned(),
        "modules-2\n".to_owned(),
        "registry\n".to_owned(),
        "read-only\n".to_owned(),
    ] {
        assert!(seen.contains(&expected), "{expected:?} not in {seen}");
    }
    assert!(!seen.contains("VISIBLE"), "{seen}");
    assert!(!home.join("go/pkg/mod/new").exists());
}
