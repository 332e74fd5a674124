//! Reading an agent's request, in any of the gateway's protocols, into the
//! provider-neutral conversation (text and tool calls; images, thinking and
//! cache hints are dropped).

use crate::conversation::{Block, Message, ModelRequest, Role, ToolCall, ToolSpec, text_of};
use crate::gateway::ClientProtocol;
use serde_json::Value;

/// The conversation an agent's request holds.
pub(crate) fn request(protocol: ClientProtocol, body: &Value) -> Result<ModelRequest, String> {
    let mut conversation = Conversation::default();
    match protocol {
        ClientProtocol::Anthropic => anthropic(body, &mut conversation),
        ClientProtocol::OpenaiChat => chat(body, &mut conversation),
        ClientProtocol::OpenaiResponses => responses(body, &mut conversation),
        ClientProtocol::Gemini => gemini(body, &mut conversation),
    }?;
    if conversation.messages.is_empty() {
        return Err("the request has no messages".into());
    }
    Ok(ModelRequest {
        system: conversation.system.join("\n\n"),
        messages: conversation.messages,
        tools: conversation.tools,
    })
}

/// A conversation being read; consecutive blocks of one role make one
/// message, as every provider wants.
#[derive(Default)]
struct Conversation {
    system: Vec<String>,
    messages: Vec<Message>,
    tools: Vec<ToolSpec>,
}

impl Conversation {
    fn push(&mut self, role: Role, block: Block) {
        if let Block::Text { text } = &block
            && text.is_empty()
        {
            return;
        }
        match self.messages.last_mut() {
            Some(last) if last.role == role => last.content.push(block),
            _ => self.messages.push(Message {
                role,
                content: vec![block],
            }),
        }
    }

    fn tool(&mut self, name: Option<&str>, description: Option<&str>, parameters: &Value) {
        if let Some(name) = name {
            self.tools.push(ToolSpec {
                name: name.to_owned(),
                description: description.unwrap_or_default().to_owned(),
                parameters: if parameters.is_object() {
                    parameters.clone()
                } else {
                    serde_json::json!({ "type": "object" })
                },
            });
        }
    }
}

fn role_of(role: Option<&str>) -> Role {
    match role {
        Some("assistant") | Some("model") => Role::Assistant,
        _ => Role::User,
    }
}

fn anthropic(body: &Value, out: &mut Conversation) -> Result<(), String> {
    let system = text_of(&body["system"]);
    if !system.is_empty() {
        out.system.push(system);
    }
    let messages = body["messages"]
        .as_array()
        .ok_or("an Anthropic request needs messages")?;
    for message in messages {
        let role = message["role"].as_str();
        if role == Some("system") {
            out.system.push(text_of(&message["content"]));
            continue;
        }
        let role = role_of(role);
        match &message["content"] {
            Value::String(text) => out.push(role, Block::Text { text: text.clone() }),
            Value::Array(blocks) => {
                for block in blocks {
                    match block["type"].as_str() {
                        Some("text") => out.push(
                            role,
                            Block::Text {
                                text: text_of(&block["text"]),
                            },
                        ),
                        Some("tool_use") => out.push(
                            role,
                            Block::ToolCall(ToolCall {
                                id: block["id"].as_str().unwrap_or_default().to_owned(),
                                name: block["name"].as_str().unwrap_or_default().to_owned(),
                                arguments: block["input"].to_string(),
                            }),
                        ),
                        Some("tool_result") => out.push(
                            Role::User,
                            Block::ToolResult {
                                call_id: block["tool_use_id"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned(),
                                content: text_of(&block["content"]),
                                is_error: block["is_error"].as_bool().unwrap_or(false),
                            },
                        ),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        out.tool(
            tool["name"].as_str(),
            tool["description"].as_str(),
            &tool["input_schema"],
        );
    }
    Ok(())
}

fn chat(body: &Value, out: &mut Conversation) -> Result<(), String> {
    let messages = body["messages"]
        .as_array()
        .ok_or("a Chat Completions request needs messages")?;
    for message in messages {
        match message["role"].as_str() {
            Some("system") | Some("developer") => out.system.push(text_of(&message["content"])),
            Some("tool") => out.push(
                Role::User,
                Block::ToolResult {
                    call_id: message["tool_call_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    content: text_of(&message["content"]),
                    is_error: false,
                },
            ),
            role => {
                let role = role_of(role);
                out.push(
                    role,
                    Block::Text {
                        text: text_of(&message["content"]),
                    },
                );
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    out.push(
                        role,
                        Block::ToolCall(ToolCall {
                            id: call["id"].as_str().unwrap_or_default().to_owned(),
                            name: call["function"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            arguments: call["function"]["arguments"]
                                .as_str()
                                .unwrap_or("{}")
                                .to_owned(),
                        }),
                    );
                }
            }
        }
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        let function = &tool["function"];
        out.tool(
            function["name"].as_str(),
            function["description"].as_str(),
            &function["parameters"],
        );
    }
    Ok(())
}

fn responses(body: &Value, out: &mut Conversation) -> Result<(), String> {
    if let Some(instructions) = body["instructions"].as_str() {
        out.system.push(instructions.to_owned());
    }
    match &body["input"] {
        Value::String(text) => out.push(Role::User, Block::Text { text: text.clone() }),
        Value::Array(items) => {
            for item in items {
                match (item["type"].as_str(), item["role"].as_str()) {
                    (Some("function_call"), _) => out.push(
                        Role::Assistant,
                        Block::ToolCall(ToolCall {
                            id: item["call_id"].as_str().unwrap_or_default().to_owned(),
                            name: item["name"].as_str().unwrap_or_default().to_owned(),
                            arguments: item["arguments"].as_str().unwrap_or("{}").to_owned(),
                        }),
                    ),
                    (Some("function_call_output"), _) => out.push(
                        Role::User,
                        Block::ToolResult {
                            call_id: item["call_id"].as_str().unwrap_or_default().to_owned(),
                            content: text_of(&item["output"]),
                            is_error: false,
                        },
                    ),
                    (_, Some("system")) | (_, Some("developer")) => {
                        out.system.push(text_of(&item["content"]))
                    }
                    (Some("message") | None, role @ Some(_)) => out.push(
                        role_of(role),
                        Block::Text {
                            text: text_of(&item["content"]),
                        },
                    ),
                    _ => {}
                }
            }
        }
        _ => return Err("a Responses request needs input".into()),
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        if tool["type"] == "function" {
            out.tool(
                tool["name"].as_str(),
                tool["description"].as_str(),
                &tool["parameters"],
            );
        }
    }
    Ok(())
}

fn gemini(body: &Value, out: &mut Conversation) -> Result<(), String> {
    let system = text_of(&body["systemInstruction"]["parts"]);
    if !system.is_empty() {
        out.system.push(system);
    }
    let contents = body["contents"]
        .as_array()
        .ok_or("a Gemini request needs contents")?;
    // Calls without ids are answered by name, in order.
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut counter = 0usize;
    for content in contents {
        let role = role_of(content["role"].as_str());
        for part in content["parts"].as_array().into_iter().flatten() {
            if let Some(text) = part["text"].as_str() {
                if part["thought"].as_bool() != Some(true) {
                    out.push(
                        role,
                        Block::Text {
                            text: text.to_owned(),
                        },
                    );
                }
            } else if part["functionCall"].is_object() {
                let call = &part["functionCall"];
                let name = call["name"].as_str().unwrap_or_default().to_owned();
                let id = call["id"].as_str().map_or_else(
                    || {
                        counter += 1;
                        format!("call_{counter}")
                    },
                    str::to_owned,
                );
                pending.push((name.clone(), id.clone()));
                out.push(
                    Role::Assistant,
                    Block::ToolCall(ToolCall {
                        id,
                        name,
                        arguments: call["args"].to_string(),
                    }),
                );
            } else if part["functionResponse"].is_object() {
                let response = &part["functionResponse"];
                let name = response["name"].as_str().unwrap_or_default();
                let id = match response["id"].as_str() {
                    Some(id) => id.to_owned(),
                    None => pending
                        .iter()
                        .position(|(n, _)| n == name)
                        .map(|i| pending.remove(i).1)
                        .unwrap_or_default(),
                };
                let result = &response["response"];
                let is_error = result.get("error").is_some();
                let content = result["output"]
                    .as_str()
                    .or(result["error"].as_str())
                    .map_or_else(|| result.to_string(), str::to_owned);
                out.push(
                    Role::User,
                    Block::ToolResult {
                        call_id: id,
                        content,
                        is_error,
                    },
                );
            }
        }
    }
    for group in body["tools"].as_array().into_iter().flatten() {
        for declaration in group["functionDeclarations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let parameters = if declaration["parametersJsonSchema"].is_object() {
                &declaration["parametersJsonSchema"]
            } else {
                &declaration["parameters"]
            };
            out.tool(
                declaration["name"].as_str(),
                declaration["description"].as_str(),
                parameters,
            );
        }
    }
    Ok(())
}
