//! Chat latency while 8 agent tasks run: the median and p95 time to answer
//! "status" (every task's phase, last step, checks and cost), beside the
//! floor under it: the same reads done with raw SQLite on the same database
//! in the same run.
//!
//! Run: `cargo bench -p pushpals-orchestrator --bench chat_latency`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pushpals_core::{Actor, AgentWork, TaskState};
use pushpals_orchestrator::{NewTask, Orchestrator, Settings};
use pushpals_policy::Policy;
use pushpals_sandbox::HostRunner;
use pushpals_store::{Durability, Store};
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};
use pushpals_workspace::Repo;
use std::sync::Arc;
use std::time::{Duration, Instant};

const AGENTS: usize = 8;
const SAMPLES: usize = 300;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    // Each agent keeps calling its model (every 5 ms) and listing files, so
    // events are written all through the measurement.
    let scripts: Vec<(String, Vec<Reply>)> = (0..AGENTS)
        .map(|i| {
            let mut replies: Vec<Reply> = (0..400)
                .map(|_| Reply::tool("list_files", "{}").after(Duration::from_millis(5)))
                .collect();
            replies.push(Reply::tool("finish", r#"{"summary":"done"}"#));
            (format!("Task: Agent {i}\\n"), replies)
        })
        .collect();
    let server = ScriptedModel::start_keyed(
        scripts
            .iter()
            .map(|(m, r)| (m.as_str(), r.clone()))
            .collect(),
    )
    .await;
    let repo = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let settings = Settings::from_toml(&format!(
        "max_parallel = {AGENTS}\n[models.strong]\nprotocol = \"openai\"\nbase_url = \"{}\"\n\
         model = \"bench\"\n[agent.budget]\nmax_steps = 1000\n",
        server.openai_base()
    ))
    .unwrap();
    let orchestrator = Orchestrator::start(
        Store::open(data.path(), Durability::Normal).unwrap(),
        Some(Repo::open(&repo.path).await.unwrap()),
        Arc::new(HostRunner),
        settings,
        Policy::builtin().unwrap(),
        data.path(),
    )
    .await
    .unwrap();
    let actor = Actor::User("bench".into());
    let mut ids = Vec::new();
    for i in 0..AGENTS {
        let task = orchestrator
            .create_task(
                NewTask {
                    title: format!("Agent {i}"),
                    command: None,
                    agent: Some(AgentWork {
                        prompt: "list files, again and again".into(),
                        ..AgentWork::default()
                    }),
                    approve_command: false,
                    repo: None,
                },
                actor.clone(),
            )
            .await
            .unwrap();
        ids.push(task.id);
    }
    // Wait until all of them run and have called their model.
    loop {
        let tasks = orchestrator.store().tasks(None).await.unwrap();
        if tasks
            .iter()
            .all(|t| t.state == TaskState::Running && t.usage.model_calls >= 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut ours = Vec::with_capacity(SAMPLES);
    let mut listed = 0;
    for _ in 0..SAMPLES {
        let start = Instant::now();
        let reply = orchestrator
            .chat("status", actor.clone(), false)
            .await
            .unwrap();
        ours.push(start.elapsed());
        listed = reply.tasks.len();
    }
    let still_running = orchestrator
        .store()
        .tasks(Some(vec![TaskState::Running]))
        .await
        .unwrap()
        .len();

    // The floor: the same reads with raw SQLite, on the same live database.
    let conn = rusqlite::Connection::open(data.path().join("pushpals.db")).unwrap();
    let mut floor = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        let mut tasks = conn
            .prepare_cached("SELECT id, title, state, agent FROM tasks ORDER BY seq")
            .unwrap();
        let rows: Vec<String> = tasks
            .query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for id in rows {
            let mut last = conn
                .prepare_cached(
                    "SELECT id, kind, payload FROM events WHERE task_id = ?1 AND kind IN \
                     ('tool_call','command_started','command_finished','check_result','model_call',\
                      'agent_finished','approval_requested','approval_decided','commit','worktree_created') \
                     ORDER BY id DESC LIMIT 1",
                )
                .unwrap();
            let step: Vec<String> = last
                .query_map([&id], |row| row.get::<_, String>(2))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let mut checks = conn
                .prepare_cached(
                    "SELECT id, kind, payload FROM events WHERE task_id = ?1 \
                     AND kind = 'check_result' ORDER BY id DESC LIMIT 6",
                )
                .unwrap();
            let n = checks
                .query_map([&id], |row| row.get::<_, String>(2))
                .unwrap()
                .count();
            std::hint::black_box((step, n));
        }
        floor.push(start.elapsed());
    }

    let (ours_median, ours_p95) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.95));
    let (floor_median, floor_p95) = (percentile(&mut floor, 0.5), percentile(&mut floor, 0.95));
    println!(
        "chat \"status\" with {AGENTS} agent tasks running ({still_running} still running at the end, {listed} listed, {} model requests served)",
        server.requests().len()
    );
    println!(
        "  ours:  median {:>8.3} ms  p95 {:>8.3} ms",
        ours_median.as_secs_f64() * 1e3,
        ours_p95.as_secs_f64() * 1e3
    );
    println!(
        "  floor (raw SQLite, same reads): median {:>8.3} ms  p95 {:>8.3} ms",
        floor_median.as_secs_f64() * 1e3,
        floor_p95.as_secs_f64() * 1e3
    );
    println!(
        "  ratio: median {:.1}x  p95 {:.1}x",
        ours_median.as_secs_f64() / floor_median.as_secs_f64(),
        ours_p95.as_secs_f64() / floor_p95.as_secs_f64()
    );
    for id in ids {
        let _ = orchestrator.cancel_task(&id, actor.clone()).await;
    }
}
