//! The planner: a person's request becomes a backlog of small tasks, as a
//! structured tool call validated before anything is created.

use crate::conversation::{Message, ModelRequest, ToolSpec};
use crate::provider::{ModelClient, ProviderError};
use pushpals_core::Usage;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;

/// The planner's tool.
pub const SUBMIT_PLAN: &str = "submit_plan";
/// Most tasks in one plan.
pub const MAX_TASKS: usize = 12;
/// Longest task title.
const MAX_TITLE: usize = 200;

/// One task of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedTask {
    /// A short key, unique in the plan, that `depends_on` refers to.
    pub key: String,
    /// What to do, in a line (the commit subject).
    pub title: String,
    /// The full instructions for the worker.
    pub prompt: String,
    /// Files and directories the change should stay within.
    #[serde(default)]
    pub scope: Vec<String>,
    /// How to tell it is done.
    #[serde(default)]
    pub acceptance: Vec<String>,
    /// Keys of earlier tasks that must finish first.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// A validated backlog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// One or two sentences for the person.
    pub summary: String,
    /// The tasks, in an order where dependencies come first.
    pub tasks: Vec<PlannedTask>,
}

/// The JSON Schema the model's `submit_plan` arguments must meet.
pub fn plan_schema() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    json!({
        "type": "object",
        "properties": {
            "summary": { "type": "string" },
            "tasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_TASKS,
                "items": {
                    "type": "object",
                    "properties": {
                        "key": { "type": "string" },
                        "title": { "type": "string", "maxLength": MAX_TITLE },
                        "prompt": { "type": "string" },
                        "scope": strings,
                        "acceptance": strings,
                        "depends_on": strings,
                    },
                    "required": ["key", "title", "prompt"],
                    "additionalProperties": false,
                },
            },
        },
        "required": ["summary", "tasks"],
        "additionalProperties": false,
    })
}

fn plan_tool() -> ToolSpec {
    ToolSpec {
        name: SUBMIT_PLAN.into(),
        description:
            "Submit the backlog: small, independent tasks where possible, each a reviewable change."
                .into(),
        parameters: plan_schema(),
    }
}

/// Checks a plan's arguments against the schema and the rules the schema
/// cannot say (unique keys, dependencies on earlier tasks only).
pub fn validate(arguments: &str) -> Result<Plan, String> {
    let plan: Plan = serde_json::from_str(arguments)
        .map_err(|e| format!("the plan does not match the schema: {e}"))?;
    if plan.tasks.is_empty() || plan.tasks.len() > MAX_TASKS {
        return Err(format!(
            "a plan has 1 to {MAX_TASKS} tasks, not {}",
            plan.tasks.len()
        ));
    }
    let mut seen = HashSet::new();
    for task in &plan.tasks {
        let key = task.key.trim();
        if key.is_empty() || task.title.trim().is_empty() || task.prompt.trim().is_empty() {
            return Err("every task needs a key, a title and a prompt".into());
        }
        if task.title.len() > MAX_TITLE || task.title.contains('\n') {
            return Err(format!(
                "task {key}: the title must be one line of at most {MAX_TITLE} bytes"
            ));
        }
        for dependency in &task.depends_on {
            if !seen.contains(dependency.as_str()) {
                return Err(format!(
                    "task {key} depends on {dependency:?}, which is not an earlier task of the plan"
                ));
            }
        }
        if !seen.insert(key) {
            return Err(format!("two tasks have the key {key:?}"));
        }
    }
    Ok(plan)
}

/// A planner model call, for the audit log and the cost.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannerCall {
    /// The event's detail.
    pub detail: pushpals_core::payload::ModelCall,
    /// What it used.
    pub usage: Usage,
}

/// Why no plan came.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The model could not be reached or refused.
    #[error(transparent)]
    Model(#[from] ProviderError),
    /// Its plan was invalid twice.
    #[error("the planner's plan was invalid twice; the last problem: {0}")]
    Invalid(String),
}

/// What planning produced, with every call it made.
#[derive(Debug)]
pub struct Planning {
    /// The plan, or why there is none.
    pub result: Result<Plan, PlanError>,
    /// The calls made (usage is spent either way).
    pub calls: Vec<PlannerCall>,
}

const PLANNER_SYSTEM: &str = "You plan work on a software repository for a team of coding agents \
that work in parallel, each on its own branch. Split the person's request into the fewest small \
tasks that can each be reviewed as one change. Give each task a short key, a one-line title, a \
prompt with everything its worker needs, the files or directories it should touch (scope), \
acceptance criteria, and depends_on naming earlier tasks only when one truly needs another's \
result. Answer only by calling submit_plan.";

/// Asks `client` for a plan for `request`; an invalid plan is sent back
/// once with what was wrong, then reported.
pub async fn make_plan(client: &ModelClient, request: &str, repository: &str) -> Planning {
    let mut calls = Vec::new();
    let mut messages = vec![Message::user(format!(
        "The repository:\n{repository}\n\nThe person asks:\n{request}"
    ))];
    let mut last_problem = String::new();
    for attempt in 0..2 {
        let model_request = ModelRequest {
            system: PLANNER_SYSTEM.into(),
            messages: messages.clone(),
            tools: vec![plan_tool()],
        };
        let reply = match client.complete(&model_request).await {
            Ok(reply) => reply,
            Err(error) => {
                return Planning {
                    result: Err(error.into()),
                    calls,
                };
            }
        };
        let config = client.config();
        let usage = Usage {
            model_calls: 1,
            input_tokens: reply.usage.input_tokens,
            output_tokens: reply.usage.output_tokens,
            cost_micros: config.cost_micros(reply.usage.input_tokens, reply.usage.output_tokens),
        };
        let submitted = reply.tool_calls.iter().find(|c| c.name == SUBMIT_PLAN);
        let verdict = match submitted {
            Some(call) => validate(&call.arguments),
            None => Err("no submit_plan call came; answer by calling submit_plan".into()),
        };
        calls.push(PlannerCall {
            detail: pushpals_core::payload::ModelCall {
                model: client.name().to_owned(),
                purpose: Some("plan".into()),
                attempt: Some(attempt + 1),
                reply: Some(crate::tools::truncate(&reply.text, 4000)),
                plan: submitted.map(|c| crate::tools::truncate(&c.arguments, 8000)),
                valid: Some(verdict.is_ok()),
                problem: verdict.as_ref().err().cloned(),
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cost_micros: usage.cost_micros,
                retries: reply.retries.clone(),
                latency_ms: Some(reply.latency_ms),
                ..Default::default()
            },
            usage,
        });
        match verdict {
            Ok(plan) => {
                return Planning {
                    result: Ok(plan),
                    calls,
                };
            }
            Err(problem) => {
                messages.push(reply.to_message());
                let mut answer = Message::user(format!(
                    "That plan cannot be used: {problem}. Call submit_plan again with a corrected plan."
                ));
                if let Some(call) = submitted {
                    answer.content.insert(
                        0,
                        crate::conversation::Block::ToolResult {
                            call_id: call.id.clone(),
                            content: problem.clone(),
                            is_error: true,
                        },
                    );
                }
                messages.push(answer);
                last_problem = problem;
            }
        }
    }
    Planning {
        result: Err(PlanError::Invalid(last_problem)),
        calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_plan_passes() {
        let plan = validate(
            r#"{"summary":"two things","tasks":[
                {"key":"a","title":"Add X","prompt":"add x","scope":["src/x.rs"]},
                {"key":"b","title":"Add Y","prompt":"add y","depends_on":["a"]}]}"#,
        )
        .unwrap();
        assert_eq!(plan.tasks.len(), 2);
        assert_eq!(plan.tasks[1].depends_on, vec!["a".to_owned()]);
    }

    #[test]
    fn bad_plans_say_what_is_wrong() {
        let cases = [
            (r#"{"summary":"s","tasks":[]}"#, "1 to"),
            (r#"{"summary":"s"}"#, "schema"),
            (
                r#"{"summary":"s","tasks":[{"key":"a","title":"t","prompt":"p","extra":1}]}"#,
                "schema",
            ),
            (
                r#"{"summary":"s","tasks":[{"key":"a","title":"t","prompt":"p","depends_on":["b"]},{"key":"b","title":"t","prompt":"p"}]}"#,
                "not an earlier task",
            ),
            (
                r#"{"summary":"s","tasks":[{"key":"a","title":"t","prompt":"p"},{"key":"a","title":"t","prompt":"p"}]}"#,
                "two tasks",
            ),
            (
                r#"{"summary":"s","tasks":[{"key":"a","title":"two\nlines","prompt":"p"}]}"#,
                "one line",
            ),
            (
                r#"{"summary":"s","tasks":[{"key":"a","title":" ","prompt":"p"}]}"#,
                "needs a key",
            ),
            ("not json", "schema"),
        ];
        for (input, expected) in cases {
            let error = validate(input).unwrap_err();
            assert!(error.contains(expected), "{input}: {error}");
        }
    }
}
