//! A container image for the container backend's tests, built here from
//! the host's static busybox and static bash (nothing is pulled).

use std::process::Command;
use std::sync::OnceLock;

/// The image's name.
const IMAGE: &str = "localhost/pushpals-test-busybox:2";

/// Imports a busybox image with bash into podman once per test process
/// and returns its name. Needs podman, busybox-static and bash-static (CI
/// installs them).
pub fn busybox_image() -> &'static str {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        let present = Command::new("podman")
            .args(["image", "exists", IMAGE])
            .status()
            .expect("podman must be installed (CI installs it)")
            .success();
        if present {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for sub in ["bin", "tmp", "etc", "proc", "sys", "dev"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("busybox-static must be installed (CI installs it)");
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
            }
        }
        // Commands run with bash, the shell policy judges them as.
        let bash = root.join("bin/bash");
        let _ = std::fs::remove_file(&bash);
        std::fs::copy("/bin/bash-static", &bash)
            .expect("bash-static must be installed (CI installs it)");
        let tar = dir.path().join("root.tar");
        let packed = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(packed.success(), "tar failed");
        let imported = Command::new("podman")
            .args(["import", "-q", "--change", "ENV PATH=/bin"])
            .arg(&tar)
            .arg(IMAGE)
            .status()
            .unwrap();
        assert!(imported.success(), "podman import failed");
    });
    IMAGE
}
