//! The worker's tool loop: ask the model, run the tools it calls, give
//! back their results, until it finishes or a budget runs out.

use crate::budget::{Budget, Spending};
use crate::context;
use crate::conversation::{Block, Message, ModelReply, ModelRequest, Role, ToolCall};
use crate::host::{AgentHost, CommandOutcome, HostError};
use crate::provider::{ModelClient, ProviderError};
use crate::tools::{self, ToolOutput, confine::Root, names};
use pushpals_core::Usage;
use pushpals_core::payload::{
    AgentFinished, CalledTool, ContextSummarised, EventPayload, ModelCall, ToolCalled,
};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::watch;

/// Most characters of a reply or tool result kept in an event.
const EVENT_TEXT: usize = 4000;

/// Why a run ended without finishing.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A budget ran out.
    #[error("{0}")]
    Budget(String),
    /// The model could not be reached or refused.
    #[error(transparent)]
    Model(#[from] ProviderError),
    /// The task was cancelled.
    #[error("the task was cancelled")]
    Cancelled,
    /// The host failed.
    #[error("{0}")]
    Host(String),
}

impl From<HostError> for AgentError {
    fn from(error: HostError) -> Self {
        match error {
            HostError::Cancelled => Self::Cancelled,
            HostError::Failed(why) => Self::Host(why),
        }
    }
}

/// One agent run's settings.
#[derive(Debug)]
pub struct AgentRun {
    /// The model to use.
    pub client: Arc<ModelClient>,
    /// The system prompt (see [`crate::prompt::system_prompt`]).
    pub system: String,
    /// The first user message: the task, or the person's feedback on a
    /// continued task.
    pub task: String,
    /// What it may spend.
    pub budget: Budget,
    /// Longest tool result given to the model, in bytes.
    pub max_tool_output: usize,
    /// The worktree the file tools work in.
    pub root: Arc<Root>,
    /// Turns true when the task is cancelled.
    pub cancel: watch::Receiver<bool>,
}

/// How a run finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The agent's summary of what it did.
    pub summary: String,
    /// What its model calls used.
    pub usage: Usage,
}

/// Runs the loop to the end.
pub async fn run<H: AgentHost>(mut run: AgentRun, host: &H) -> Result<Finished, AgentError> {
    let mut spending = Spending::start(run.budget.clone());
    let mut messages = vec![Message::user(run.task.clone())];
    let tools = tools::worker_tools();
    loop {
        if let Some(why) = spending.exhausted() {
            return Err(AgentError::Budget(why));
        }
        if *run.cancel.borrow() {
            return Err(AgentError::Cancelled);
        }
        deliver_inbox(host, &mut messages);
        let mut request = ModelRequest {
            system: run.system.clone(),
            messages: messages.clone(),
            tools: tools.clone(),
        };
        let config = run.client.config();
        if context::needs_summary(
            context::estimate_tokens(&request),
            config.context_tokens,
            config.max_output_tokens,
        ) && let Some(cut) = context::cut_point(&messages)
        {
            messages = summarise(&mut run, host, &mut spending, &messages, cut).await?;
            request.messages = messages.clone();
        }
        let reply = call(&mut run, &spending, &request).await?;
        let usage = account(&run, &mut spending, &reply);
        host.record_model_call(
            model_call_detail(
                &run,
                &request,
                &reply,
                "step",
                spending.steps(),
                usage,
                host,
            ),
            usage,
        )
        .await?;
        messages.push(reply.to_message());
        if reply.tool_calls.is_empty() {
            // A turn without tools ends the run: its text is the summary.
            return finish(host, reply.text.clone(), spending.used()).await;
        }
        let mut results = Vec::new();
        let mut summary = None;
        for tool_call in &reply.tool_calls {
            let output = match parse_arguments(tool_call) {
                Err(output) => output,
                Ok(args) if tool_call.name == names::FINISH => {
                    let text = args["summary"].as_str().unwrap_or_default().to_owned();
                    summary = Some(if text.is_empty() {
                        reply.text.clone()
                    } else {
                        text
                    });
                    ToolOutput::ok("finished".into())
                }
                Ok(args) => dispatch(&run, host, tool_call, &args).await?,
            };
            let content = host.redact(&tools::truncate(&output.content, run.max_tool_output));
            let called = ToolCalled {
                call_id: tool_call.id.clone(),
                tool: tool_call.name.clone(),
                arguments: shown_arguments(host, &tool_call.arguments),
                is_error: output.is_error,
                result: tools::truncate(&content, EVENT_TEXT),
            };
            record_payload(host, &called).await?;
            results.push(Block::ToolResult {
                call_id: tool_call.id.clone(),
                content,
                is_error: output.is_error,
            });
        }
        messages.push(Message {
            role: Role::User,
            content: results,
        });
        if let Some(summary) = summary {
            return finish(host, summary, spending.used()).await;
        }
    }
}

async fn finish<H: AgentHost>(
    host: &H,
    summary: String,
    usage: Usage,
) -> Result<Finished, AgentError> {
    let summary = host.redact(&summary);
    let finished = AgentFinished {
        summary: summary.clone(),
        usage: Some(usage),
        ..AgentFinished::default()
    };
    record_payload(host, &finished).await?;
    Ok(Finished { summary, usage })
}

/// Records an event of a payload type.
async fn record_payload<H: AgentHost, T: EventPayload>(
    host: &H,
    payload: &T,
) -> Result<(), AgentError> {
    let detail = serde_json::to_value(payload)
        .map_err(|e| AgentError::Host(format!("an event that does not serialise: {e}")))?;
    host.record(T::KIND, detail).await?;
    Ok(())
}

/// Messages from other tasks or the person join the next user turn.
fn deliver_inbox<H: AgentHost>(host: &H, messages: &mut [Message]) {
    let incoming = host.inbox();
    if incoming.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut().filter(|m| m.role == Role::User) {
        for text in incoming {
            last.content.push(Block::Text {
                text: format!("[message] {text}"),
            });
        }
    }
}

/// The arguments as a JSON object, or the error the model gets back.
fn parse_arguments(call: &ToolCall) -> Result<Value, ToolOutput> {
    let text = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        call.arguments.as_str()
    };
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(ToolOutput::error(format!(
            "the arguments of {} must be a JSON object; call it again with an object",
            call.name
        ))),
        Err(error) => Err(ToolOutput::error(format!(
            "the arguments of {} are not valid JSON ({error}); call it again with a JSON object",
            call.name
        ))),
    }
}

fn shown_arguments<H: AgentHost>(host: &H, raw: &str) -> Value {
    let redacted = host.redact(raw);
    serde_json::from_str(&redacted).unwrap_or(Value::String(tools::truncate(&redacted, EVENT_TEXT)))
}

async fn dispatch<H: AgentHost>(
    run: &AgentRun,
    host: &H,
    call: &ToolCall,
    args: &Value,
) -> Result<ToolOutput, AgentError> {
    match call.name.as_str() {
        names::RUN_COMMAND => {
            let Some(command) = args["command"].as_str() else {
                return Ok(ToolOutput::error("run_command needs a `command`".into()));
            };
            Ok(match host.run_command(command).await? {
                CommandOutcome::Ran {
                    exit_code,
                    summary,
                    output,
                } => {
                    let text = format!("{summary}\n{output}");
                    if exit_code == Some(0) {
                        ToolOutput::ok(text)
                    } else {
                        ToolOutput::error(text)
                    }
                }
                CommandOutcome::Refused(why) => {
                    ToolOutput::error(format!("the command was not run: {why}"))
                }
            })
        }
        names::SEND_MESSAGE => {
            let (Some(to), Some(text)) = (args["to"].as_str(), args["text"].as_str()) else {
                return Ok(ToolOutput::error(
                    "send_message needs `to` and `text`".into(),
                ));
            };
            Ok(match host.send_message(to, text).await {
                Ok(delivered) => ToolOutput::ok(delivered),
                Err(why) => ToolOutput::error(why),
            })
        }
        name => {
            let root = Arc::clone(&run.root);
            let owned_name = name.to_owned();
            let owned_args = args.clone();
            let output = tokio::task::spawn_blocking(move || {
                tools::run_local(&root, &owned_name, &owned_args)
            })
            .await
            .map_err(|e| AgentError::Host(format!("a tool stopped: {e}")))?;
            Ok(output.unwrap_or_else(|| {
                let known: Vec<String> =
                    tools::worker_tools().into_iter().map(|t| t.name).collect();
                ToolOutput::error(format!(
                    "there is no tool named {name:?}; the tools are: {}",
                    known.join(", ")
                ))
            }))
        }
    }
}

/// One model call, given up when the task is cancelled or its time budget
/// runs out.
async fn call(
    run: &mut AgentRun,
    spending: &Spending,
    request: &ModelRequest,
) -> Result<ModelReply, AgentError> {
    let client = Arc::clone(&run.client);
    let cancelled = run.cancel.wait_for(|c| *c);
    let out_of_time = tokio::time::sleep(spending.time_left());
    tokio::select! {
        reply = client.complete(request) => Ok(reply?),
        _ = cancelled => Err(AgentError::Cancelled),
        _ = out_of_time => Err(AgentError::Budget(format!(
            "the time budget is spent ({} minutes) while waiting for the model; raise [agent.budget] max_minutes",
            run.budget.max_minutes
        ))),
    }
}

fn account(run: &AgentRun, spending: &mut Spending, reply: &ModelReply) -> Usage {
    let config = run.client.config();
    let usage = Usage {
        model_calls: 1,
        input_tokens: reply.usage.input_tokens,
        output_tokens: reply.usage.output_tokens,
        cost_micros: config.cost_micros(reply.usage.input_tokens, reply.usage.output_tokens),
    };
    spending.record(usage);
    usage
}

fn model_call_detail<H: AgentHost>(
    run: &AgentRun,
    request: &ModelRequest,
    reply: &ModelReply,
    purpose: &str,
    step: u32,
    usage: Usage,
    host: &H,
) -> ModelCall {
    let tool_calls = reply
        .tool_calls
        .iter()
        .map(|c| CalledTool {
            name: c.name.clone(),
            id: Some(c.id.clone()),
            arguments: shown_arguments(host, &c.arguments),
        })
        .collect();
    let prompt_chars =
        request.system.len() + request.messages.iter().map(Message::size).sum::<usize>();
    ModelCall {
        model: run.client.name().to_owned(),
        purpose: Some(purpose.to_owned()),
        step: Some(step),
        messages: Some(request.messages.len() as u64),
        prompt_chars: Some(prompt_chars as u64),
        reply: Some(tools::truncate(&host.redact(&reply.text), EVENT_TEXT)),
        tool_calls,
        stop: Some(reply.stop.as_str().to_owned()),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cost_micros: usage.cost_micros,
        retries: reply.retries.clone(),
        latency_ms: Some(reply.latency_ms),
        ..ModelCall::default()
    }
}

/// Replaces the turns before `cut` with a summary the model writes.
async fn summarise<H: AgentHost>(
    run: &mut AgentRun,
    host: &H,
    spending: &mut Spending,
    messages: &[Message],
    cut: usize,
) -> Result<Vec<Message>, AgentError> {
    let request = ModelRequest {
        system: context::SUMMARY_SYSTEM.to_owned(),
        messages: vec![Message::user(context::transcript(&messages[..cut], 2000))],
        tools: Vec::new(),
    };
    let reply = call(run, spending, &request).await?;
    let usage = account(run, spending, &reply);
    host.record_model_call(
        model_call_detail(
            run,
            &request,
            &reply,
            "summary",
            spending.steps(),
            usage,
            host,
        ),
        usage,
    )
    .await?;
    let mut kept = vec![context::summarised_start(&run.task, &reply.text)];
    kept.extend_from_slice(&messages[cut..]);
    let summarised = ContextSummarised {
        turns_replaced: cut as u64,
        turns_kept: kept.len() as u64,
    };
    record_payload(host, &summarised).await?;
    Ok(kept)
}
