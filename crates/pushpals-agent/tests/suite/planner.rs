//! The planner against the scripted model server.

use pushpals_agent::plan::{PlanError, make_plan};
use pushpals_agent::{ModelClient, ModelConfig, Protocol};
use pushpals_test_support::{Reply, ScriptedModel};

fn client(server: &ScriptedModel) -> ModelClient {
    ModelClient::new(
        "fast",
        ModelConfig {
            protocol: Protocol::Openai,
            base_url: server.openai_base(),
            model: "planner".into(),
            api_key_env: None,
            context_tokens: 100_000,
            max_output_tokens: 1000,
            input_price_per_mtok: 0.0,
            output_price_per_mtok: 0.0,
            stream: true,
            timeout_secs: 10,
            max_retries: 0,
        },
    )
    .unwrap()
}

const GOOD: &str = r#"{"summary":"two","tasks":[{"key":"x","title":"Add X","prompt":"add x"},{"key":"y","title":"Add Y","prompt":"add y"}]}"#;

#[tokio::test]
async fn an_invalid_plan_is_sent_back_once_with_the_problem() {
    let server = ScriptedModel::start(vec![
        Reply::tool("submit_plan", r#"{"summary":"s","tasks":[]}"#),
        Reply::tool("submit_plan", GOOD),
    ])
    .await;
    let planning = make_plan(&client(&server), "add X and Y", "src/").await;
    let plan = planning.result.unwrap();
    assert_eq!(plan.tasks.len(), 2);
    assert_eq!(planning.calls.len(), 2);
    assert_eq!(planning.calls[0].detail.valid, Some(false));
    let second = &server.requests()[1].body;
    let last = second["messages"].as_array().unwrap().last().unwrap();
    assert!(
        last["content"].as_str().unwrap().contains("1 to 12 tasks"),
        "{last}"
    );
    assert_eq!(second["messages"][3]["role"], "tool");
}

#[tokio::test]
async fn a_plan_invalid_twice_is_reported() {
    let server = ScriptedModel::start(vec![
        Reply::text("I would rather chat."),
        Reply::tool("submit_plan", "{broken"),
    ])
    .await;
    let planning = make_plan(&client(&server), "add X", "").await;
    match planning.result {
        Err(PlanError::Invalid(problem)) => assert!(problem.contains("schema"), "{problem}"),
        other => panic!("expected an invalid plan, got {other:?}"),
    }
    assert_eq!(planning.calls.len(), 2);
}
