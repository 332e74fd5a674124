//! Per-task start time of each external agent: from creating the task to
//! the agent's first model request arriving at the (scripted) provider, on
//! the real server (worktree, sandbox, version check, private home,
//! gateway), beside the floor: the same agent started straight on the host
//! against the provider, in the same run.
//!
//! `cargo bench -p pushpals --bench agent_start` (the agents from the
//! cache `.ci/run` fills; see `.ci/agent-versions`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_test_support::{Reply, ScriptedModel, TempRepo};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pushpals");
const RUNS: usize = 5;

/// Where `.ci/run` installed the pinned agent `name`.
fn installed(name: &str, program: &str) -> PathBuf {
    pushpals_test_support::installed_agent(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
        name,
        program,
    )
}

/// Waits for the provider's request count to pass `seen`.
async fn first_request(model: &ScriptedModel, seen: usize, since: Instant) -> Duration {
    loop {
        if model.requests().len() > seen {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "no model request"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Starts tasks with `agent` one after another, timing each to its first
/// model request.
async fn through_push_pals(
    model: &ScriptedModel,
    server: &pushpals_test_support::ServeProcess,
    agent: &str,
) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    for run in 0..RUNS {
        let seen = model.requests().len();
        let started = Instant::now();
        let created: Value = client
            .post(format!("{}/api/v1/tasks", server.url))
            .bearer_auth(&server.token)
            .json(&json!({
                "title": format!("start {agent} {run}"),
                "agent": { "prompt": "say done", "external": agent },
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        times.push(first_request(model, seen, started).await);
        let id = created["id"].as_str().unwrap().to_owned();
        loop {
            let view: Value = client
                .get(format!("{}/api/v1/tasks/{id}", server.url))
                .bearer_auth(&server.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let state = view["task"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if ["no_changes", "failed", "awaiting_approval", "cancelled"].contains(&state.as_str())
            {
                assert_ne!(state, "failed", "{view}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    times
}

/// Starts `line` straight on the host with `env`, timing each run to its
/// first model request.
async fn on_the_host(
    model: &ScriptedModel,
    line: &str,
    env: &[(&str, String)],
    home: &Path,
    runs: usize,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let seen = model.requests().len();
        let started = Instant::now();
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", line])
            .current_dir(home)
            .env("HOME", home)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        times.push(first_request(model, seen, started).await);
        child.wait().await.unwrap();
    }
    times
}

fn report(agent: &str, ours: &mut [Duration], floor: &mut [Duration]) {
    let (o, f) = (median(ours), median(floor));
    println!(
        "  {agent:<12} median of {RUNS}: task to first model request {:>8.1} ms, the agent started on the host {:>8.1} ms, ratio {:.2}x, overhead {:.1} ms",
        o.as_secs_f64() * 1000.0,
        f.as_secs_f64() * 1000.0,
        o.as_secs_f64() / f.as_secs_f64(),
        (o.as_secs_f64() - f.as_secs_f64()) * 1000.0
    );
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// The agents measured: name, program, and the model of its protocol.
/// Through Push Pals, Gemini CLI and OpenHands start in their Agent Client
/// Protocol mode; on the host, in their headless mode (the same start-up,
/// then the prompt from the command line instead of the session).
const AGENTS: [(&str, &str, &str); 6] = [
    ("claude-code", "claude", "anthropic"),
    ("codex", "codex", "responses"),
    ("gemini-cli", "gemini", "gemini"),
    ("opencode", "opencode", "openai"),
    ("mini-swe-agent", "mini", "openai"),
    ("openhands", "openhands", "openai"),
];

async fn run() {
    // Every agent ends on its first answer: mini-swe-agent (whose prompt
    // names its completion command) needs that command, the others text.
    let complete = Reply::tool(
        "bash",
        r#"{"command":"echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"}"#,
    );
    let model = ScriptedModel::start_keyed(vec![
        (
            "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT",
            (0..RUNS * 4).map(|_| complete.clone()).collect(),
        ),
        ("", (0..RUNS * 20).map(|_| Reply::text("done")).collect()),
    ])
    .await;
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let curl = r#"curl -s -H "x-api-key: $ANTHROPIC_API_KEY" -H 'content-type: application/json' -d '{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}' "$ANTHROPIC_BASE_URL/v1/messages" > /dev/null"#;
    let root = model.anthropic_base();
    let mut config = String::from("max_parallel = 1\n");
    for (name, protocol, base) in [
        ("anthropic", "anthropic", root.clone()),
        ("openai", "openai", format!("{root}/v1")),
        ("responses", "openai_responses", format!("{root}/v1")),
        ("gemini", "gemini", root.clone()),
    ] {
        config.push_str(&format!(
            "[models.{name}]\nprotocol = \"{protocol}\"\nbase_url = \"{base}\"\nmodel = \"m\"\n"
        ));
    }
    config.push_str(&format!(
        "[agents.curl]\ncommand = {}\nmodel = \"anthropic\"\n",
        serde_json::to_string(curl).unwrap()
    ));
    let programs: Vec<PathBuf> = AGENTS
        .iter()
        .map(|(name, program, _)| installed(name, program))
        .collect();
    for ((name, _, model_name), program) in AGENTS.iter().zip(&programs) {
        config.push_str(&format!(
            "[agents.{name}]\nprogram = \"{}\"\nmodel = \"{model_name}\"\n",
            program.display()
        ));
    }
    let server =
        pushpals_test_support::ServeProcess::start(BIN, &repo.path, data.path(), &config, &[]);
    println!("external agent start ({RUNS} tasks each, one at a time)");
    for ((name, _, _), program) in AGENTS.iter().zip(&programs) {
        let mut ours = through_push_pals(&model, &server, name).await;
        // The floor: the same adapter's launch line and configuration, the
        // agent started on the host and pointed straight at the provider.
        let adapter = pushpals_agent::external::adapter(name, None).unwrap();
        let mut floor = Vec::new();
        for _ in 0..RUNS {
            let home = tempfile::tempdir().unwrap();
            let home_text = home.path().to_string_lossy().into_owned();
            let launch = adapter
                .prepare(&pushpals_agent::external::Setup {
                    home: home.path(),
                    sandbox_home: &home_text,
                    gateway_url: &root,
                    token: "k",
                    model: "m",
                    program,
                    prompt: "say done",
                    hook: None,
                    resume: None,
                    acp: false,
                })
                .unwrap();
            let mut env: Vec<(&str, String)> = launch
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            env.push(("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()));
            let line = launch.command_line.clone();
            floor.extend(on_the_host(&model, &line, &env, home.path(), 1).await);
        }
        report(name, &mut ours, &mut floor);
    }
    let direct = vec![
        ("ANTHROPIC_BASE_URL", root.clone()),
        ("ANTHROPIC_API_KEY", "k".to_owned()),
    ];
    let mut ours = through_push_pals(&model, &server, "curl").await;
    let home = tempfile::tempdir().unwrap();
    let mut floor = on_the_host(&model, curl, &direct, home.path(), RUNS).await;
    report("any command", &mut ours, &mut floor);
}
