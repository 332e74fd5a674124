//! Chat: plain commands, status while agents run, and plans from new work.

use super::agent::model_settings;
use super::support::{start, start_sandboxed, user, wait_until};
use pushpals_core::{EventKind, TaskState};
use pushpals_store::EventQuery;
use pushpals_test_support::{Reply, ScriptedModel, TempRepo};
use std::time::Duration;

async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the condition never held");
}

const TWO_TASKS: &str = r#"{"summary":"X and Y are independent","tasks":[
 {"key":"x","title":"Add X","prompt":"Create x.txt","scope":["x.txt"]},
 {"key":"y","title":"Add Y","prompt":"Create y.txt","scope":["y.txt"]}]}"#;

#[tokio::test]
async fn new_work_becomes_a_plan_whose_tasks_run_in_parallel_and_status_lists_them() {
    let server = ScriptedModel::start_keyed(vec![
        ("submit_plan", vec![Reply::tool("submit_plan", TWO_TASKS)]),
        (
            "Task: Add X",
            vec![
                Reply::tool("write_file", r#"{"path":"x.txt","content":"x\n"}"#).held(),
                Reply::tool("finish", r#"{"summary":"x"}"#),
            ],
        ),
        (
            "Task: Add Y",
            vec![
                Reply::tool("write_file", r#"{"path":"y.txt","content":"y\n"}"#).held(),
                Reply::tool("finish", r#"{"summary":"y"}"#),
            ],
        ),
    ])
    .await;
    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    let started = f
        .orchestrator
        .chat("add X and Y", user(), false)
        .await
        .unwrap();
    assert_eq!(started.intent, "new_work");
    let plan_id = started.plan_id.clone().unwrap();

    // Planner call, then both workers' first calls: both run at once.
    wait_for(|| server.requests().len() == 3).await;
    assert_eq!(
        server.requests()[0].path,
        "/v1/messages",
        "the planner uses the fast model"
    );
    let status = f.orchestrator.chat("status", user(), false).await.unwrap();
    assert_eq!(status.intent, "status");
    assert_eq!(status.tasks.len(), 2, "{}", status.reply);
    for task in &status.tasks {
        assert_eq!(task.state, "running", "{}", status.reply);
        assert!(status.reply.contains(&task.title));
    }
    assert!(status.reply.contains("Add X") && status.reply.contains("Add Y"));

    server.release();
    for task in &status.tasks {
        let done = wait_until(&f.orchestrator, &task.id, |s| {
            s.is_final() || s == TaskState::AwaitingApproval
        })
        .await;
        assert_eq!(done.state, TaskState::AwaitingApproval, "{:?}", done.reason);
        assert_eq!(
            done.agent.unwrap().plan_id.as_deref(),
            Some(plan_id.as_str())
        );
    }
    let events = f
        .orchestrator
        .store()
        .events(EventQuery::default())
        .await
        .unwrap();
    let plan = events
        .iter()
        .find(|e| e.kind == EventKind::PlanCreated.as_str())
        .unwrap();
    assert_eq!(plan.payload["plan_id"], plan_id.as_str());
    assert_eq!(plan.payload["tasks"].as_array().unwrap().len(), 2);
    let chats = events
        .iter()
        .filter(|e| e.kind == EventKind::Chat.as_str())
        .count();
    assert_eq!(chats, 2);
}

const CHAIN: &str = r#"{"summary":"b needs a","tasks":[
 {"key":"a","title":"Write A","prompt":"Create a.txt"},
 {"key":"b","title":"Use A","prompt":"Read a.txt","depends_on":["a"]}]}"#;

#[tokio::test]
async fn a_dependent_task_waits_for_the_commit_and_starts_from_it() {
    let server = ScriptedModel::start_keyed(vec![
        ("submit_plan", vec![Reply::tool("submit_plan", CHAIN)]),
        (
            "Task: Write A",
            vec![
                Reply::tool("write_file", r#"{"path":"a.txt","content":"from a\n"}"#),
                Reply::tool("finish", r#"{"summary":"a"}"#),
            ],
        ),
        (
            "Task: Use A",
            vec![
                Reply::tool("read_file", r#"{"path":"a.txt"}"#),
                Reply::tool("finish", r#"{"summary":"read it"}"#),
            ],
        ),
    ])
    .await;
    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    f.orchestrator
        .chat("write a then use it", user(), false)
        .await
        .unwrap();
    wait_for(|| server.requests().len() >= 3).await;
    let tasks = f.orchestrator.store().tasks(None).await.unwrap();
    let (a, b) = (tasks[0].clone(), tasks[1].clone());
    let a = wait_until(&f.orchestrator, &a.id, |s| s == TaskState::AwaitingApproval).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = f
        .orchestrator
        .chat(&format!("how is #{}?", b.seq), user(), false)
        .await
        .unwrap();
    assert_eq!(waiting.intent, "question");
    assert_eq!(waiting.tasks[0].state, "queued");
    assert!(waiting.reply.contains("waits for"), "{}", waiting.reply);

    let approved = f
        .orchestrator
        .chat(&format!("approve {}", a.seq), user(), true)
        .await
        .unwrap();
    assert!(
        approved.reply.starts_with("Approved commit"),
        "{}",
        approved.reply
    );
    let a = f.orchestrator.store().task(&a.id).await.unwrap();
    let b = wait_until(&f.orchestrator, &b.id, TaskState::is_final).await;
    assert_eq!(b.state, TaskState::NoChanges, "{:?}", b.reason);
    assert_eq!(b.base_commit, a.commit_sha, "b starts from a's commit");
    let read = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.body.to_string().contains("Task: Use A"))
        .unwrap();
    assert!(read.body.to_string().contains("from a"));
}

#[tokio::test]
async fn plain_commands_work_without_a_model_and_respect_scopes() {
    let server = ScriptedModel::start(vec![]).await;
    // No [models] at all: plain commands still work.
    let f = start_sandboxed(TempRepo::new(), "max_parallel = 2\n").await;
    let help = f.orchestrator.chat("help", user(), false).await.unwrap();
    assert!(help.reply.contains("approve 3"));
    let empty = f.orchestrator.chat("status", user(), false).await.unwrap();
    assert!(empty.reply.contains("No tasks yet"));
    let task = super::support::create(&f.orchestrator, "Touch", "touch t.txt").await;
    wait_until(&f.orchestrator, &task.id, |s| {
        s == TaskState::AwaitingApproval
    })
    .await;

    let forbidden = f
        .orchestrator
        .chat("approve 1", user(), false)
        .await
        .unwrap_err();
    assert!(
        forbidden.to_string().contains("approve scope"),
        "{forbidden}"
    );
    let unknown = f
        .orchestrator
        .chat("approve 9", user(), true)
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("no task #9"), "{unknown}");
    let no_planner = f
        .orchestrator
        .chat("add a README section", user(), false)
        .await
        .unwrap_err();
    assert!(
        no_planner.to_string().contains("[models.fast]"),
        "{no_planner}"
    );

    let denied = f
        .orchestrator
        .chat(&format!("deny {} not like this", task.id), user(), true)
        .await
        .unwrap();
    assert!(
        denied.reply.starts_with("Denied commit"),
        "{}",
        denied.reply
    );
    let task = f.orchestrator.store().task(&task.id).await.unwrap();
    assert_eq!(task.state, TaskState::Rejected);
    let approvals = f
        .orchestrator
        .store()
        .approvals(Some(task.id.clone()), false)
        .await
        .unwrap();
    assert_eq!(approvals[0].reason.as_deref(), Some("not like this"));
    assert!(server.requests().is_empty(), "no model was asked");
}

#[tokio::test]
async fn a_plan_that_stays_invalid_is_reported_and_creates_nothing() {
    let server = ScriptedModel::start_keyed(vec![(
        "submit_plan",
        vec![
            Reply::tool("submit_plan", r#"{"summary":"s","tasks":[]}"#),
            Reply::tool("submit_plan", r#"{"summary":"s"}"#),
        ],
    )])
    .await;
    let f = start_sandboxed(TempRepo::new(), &model_settings(&server, "")).await;
    f.orchestrator
        .chat("do something vague", user(), false)
        .await
        .unwrap();
    let store = f.orchestrator.store().clone();
    let mut failure = None;
    for _ in 0..500 {
        let events = store.events(EventQuery::default()).await.unwrap();
        if let Some(error) = events
            .into_iter()
            .find(|e| e.kind == EventKind::Error.as_str())
        {
            failure = Some(error);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let message = failure.unwrap().payload["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("invalid twice"), "{message}");
    assert!(store.tasks(None).await.unwrap().is_empty());
}

async fn wait_for_status(f: &super::support::Fixture, text: &str) -> String {
    for _ in 0..500 {
        let status = f.orchestrator.chat("status", user(), false).await.unwrap();
        if status.reply.contains(text) {
            return status.reply;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("status never said {text:?}");
}

#[tokio::test]
async fn a_plan_waits_for_an_ok_when_the_repository_or_the_server_asks() {
    let server = ScriptedModel::start_keyed(vec![
        (
            "submit_plan",
            vec![
                Reply::tool("submit_plan", TWO_TASKS),
                Reply::tool("submit_plan", TWO_TASKS),
            ],
        ),
        (
            "Task: Add X",
            vec![Reply::tool("finish", r#"{"summary":"x"}"#)],
        ),
        (
            "Task: Add Y",
            vec![Reply::tool("finish", r#"{"summary":"y"}"#)],
        ),
    ])
    .await;
    // The repository asks for care: its plans wait.
    let repo = TempRepo::new();
    repo.write("pushpals.toml", "[plan]\nconfirm = true\n");
    repo.commit_all("careful");
    let f = start_sandboxed(repo, &model_settings(&server, "")).await;
    let first = f
        .orchestrator
        .chat("add X and Y", user(), false)
        .await
        .unwrap();
    let first_id = first.plan_id.unwrap();
    let status = wait_for_status(&f, "waits for your OK").await;
    assert!(status.contains("1. Add X; 2. Add Y"), "{status}");
    assert!(f.orchestrator.store().tasks(None).await.unwrap().is_empty());
    let discarded = f
        .orchestrator
        .chat(&format!("discard {first_id}"), user(), false)
        .await
        .unwrap();
    assert!(discarded.reply.starts_with("Discarded"));
    let gone = f
        .orchestrator
        .chat(&format!("ok {first_id}"), user(), true)
        .await
        .unwrap_err();
    assert!(gone.to_string().contains("no plan"), "{gone}");

    // The server asks for care: the OK needs the approve scope, then the
    // tasks start.
    let settings = model_settings(&server, "[agent]\nconfirm_plans = true\n");
    let f = start_sandboxed(TempRepo::new(), &settings).await;
    let second = f
        .orchestrator
        .chat("add X and Y", user(), false)
        .await
        .unwrap();
    let second_id = second.plan_id.unwrap();
    wait_for_status(&f, "waits for your OK").await;
    let forbidden = f
        .orchestrator
        .chat(&format!("ok {second_id}"), user(), false)
        .await
        .unwrap_err();
    assert!(forbidden.to_string().contains("approve scope"));
    let started = f
        .orchestrator
        .chat(&format!("ok {second_id}"), user(), true)
        .await
        .unwrap();
    assert_eq!(started.reply, format!("Started {second_id}: 2 tasks."));
    let tasks = f.orchestrator.store().tasks(None).await.unwrap();
    assert_eq!(tasks.len(), 2);
    for task in tasks {
        let done = wait_until(&f.orchestrator, &task.id, TaskState::is_final).await;
        assert_eq!(done.state, TaskState::NoChanges, "{:?}", done.reason);
    }
}

#[tokio::test]
async fn planned_tasks_go_to_the_configured_external_agent() {
    let server = ScriptedModel::start_keyed(vec![(
        "submit_plan",
        vec![Reply::tool("submit_plan", TWO_TASKS)],
    )])
    .await;
    let settings = model_settings(
        &server,
        "[agent]\nexternal = \"mine\"\n[agents.mine]\ncommand = \"true\"\n",
    );
    let f = start(TempRepo::new(), &settings).await;
    f.orchestrator
        .chat("add X and Y", user(), false)
        .await
        .unwrap();
    // The planner answers in the background.
    let mut tasks = Vec::new();
    for _ in 0..500 {
        tasks = f.orchestrator.store().tasks(None).await.unwrap();
        if tasks.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tasks.len(), 2);
    for task in tasks {
        let work = task.agent.unwrap();
        assert_eq!(work.external.as_deref(), Some("mine"), "{}", task.title);
    }
}
