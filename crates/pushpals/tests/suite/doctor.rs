//! `pushpals doctor`.

use super::support::BIN;
use pushpals_test_support::{Reply, ScriptedModel};
use serde_json::Value;

fn doctor(data: &std::path::Path, config: &str) -> (bool, Value) {
    let config_dir = data.join("config-home/pushpals");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("config.toml"), config).unwrap();
    let output = std::process::Command::new(BIN)
        .args(["doctor", "--json", "--server", "http://127.0.0.1:9"])
        .env("PUSHPALS_DATA_DIR", data)
        .env("XDG_CONFIG_HOME", data.join("config-home"))
        .env_remove("PUSHPALS_CONFIG")
        .output()
        .unwrap();
    (
        output.status.success(),
        serde_json::from_slice(&output.stdout).unwrap(),
    )
}

fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["status"].as_str())
        .unwrap_or("missing")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_machine_and_each_model() {
    let model = ScriptedModel::start(vec![Reply::text("OK")]).await;
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "[models.fast]\nprotocol = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n\
         [models.gone]\nprotocol = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\n",
        model.openai_base()
    );
    let path = data.path().to_path_buf();
    let (healthy, report) = tokio::task::spawn_blocking(move || doctor(&path, &config))
        .await
        .unwrap();
    assert!(!healthy, "a model that cannot be reached fails the doctor");
    for name in ["config", "policy", "git", "sandbox", "model fast"] {
        assert_eq!(status(&report, name), "ok", "{name}: {report}");
    }
    assert_eq!(status(&report, "model gone"), "fail");
    assert_eq!(status(&report, "server"), "warn");
    assert_eq!(model.requests().len(), 1, "one tiny request per model");
}

#[test]
fn a_broken_config_fails_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let (healthy, report) = doctor(data.path(), "max_parallel = 0\n");
    assert!(!healthy);
    assert_eq!(status(&report, "config"), "fail");
    let detail = report["checks"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("max_parallel must be at least 1"),
        "{detail}"
    );
}

#[test]
fn doctor_checks_each_external_agent() {
    let data = tempfile::tempdir().unwrap();
    let fake = data.path().join("claude");
    std::fs::write(&fake, "#!/bin/sh\n").unwrap();
    let config = format!(
        "[models.strong]\nprotocol = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         [agents.claude-code]\nprogram = \"{}\"\n\
         [agents.mine]\ncommand = \"my-agent\"\n",
        fake.display()
    );
    let (_, report) = doctor(data.path(), &config);
    let detail = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c.to_string())
            .unwrap_or_default()
    };
    // Installed; the worker model speaks the other protocol, so the
    // gateway translates, and doctor says so.
    assert_eq!(status(&report, "agent claude-code"), "ok", "{report}");
    assert!(
        detail("agent claude-code").contains("translates"),
        "{report}"
    );
    assert!(
        detail("agent claude-code").contains("speaks anthropic"),
        "{report}"
    );
    assert_eq!(status(&report, "agent mine"), "ok", "{report}");
}
