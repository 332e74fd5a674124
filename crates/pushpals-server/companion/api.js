// Talking to the orchestrator: every request carries the device token in
// a header (never in a URL); the event stream is read with fetch so it can
// carry the header too, and resumes from the last id after a drop.

const TOKEN_KEY = "pushpals.token";

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API; resolves to parsed JSON, rejects with an ApiError. */
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let code = "error";
    let message = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      code = problem.code || code;
      message = problem.message || message;
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, code, message);
  }
  if (raw) return response.text();
  // 201 and 204 answers may carry no body: success all the same.
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Fetches a file of the API with the device token; resolves to a Blob. */
export async function apiBlob(path) {
  const headers = {};
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  const response = await fetch(`/api/v1${path}`, { headers });
  if (!response.ok) throw new ApiError(response.status, "error", `${response.status} ${response.statusText}`);
  return response.blob();
}

/**
 * Follows the live event stream, calling onEvent(event) for each, and
 * onState("live" | "offline") as the connection comes and goes.
 * Returns a function that stops it.
 */
export function follow(onEvent, onState) {
  let lastId = null;
  let stopped = false;
  let controller = null;
  let delay = 500;

  async function connect() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
        const response = await fetch("/api/v1/events", { headers, signal: controller.signal });
        if (!response.ok || !response.body) throw new Error(`stream ${response.status}`);
        onState("live");
        delay = 500;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = parseBlock(block);
            if (event && event.id !== undefined) lastId = event.id;
            if (event && event.data) {
              try { onEvent(JSON.parse(event.data)); } catch (_) { /* skip a bad event */ }
            }
          }
        }
      } catch (_) {
        // dropped: fall through to the retry
      }
      if (stopped) break;
      onState("offline");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  connect();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}

function parseBlock(block) {
  const event = {};
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") event.id = value;
    else if (field === "data") data.push(value);
    else if (field === "event") event.type = value;
  }
  event.data = data.join("\n");
  return event;
}
