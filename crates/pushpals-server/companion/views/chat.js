// Chat: ask for work, ask how things stand, approve or cancel in words.
// Answers come at once from the orchestrator's state.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { onLiveEvent, showError } from "../app.js";

// Task references in what was said become links: "#5", and an id after
// "task" ("Task k3vq8wz2: ...").
const REFERENCE = /#(\d{1,9})\b|\b([Tt]ask )([a-z][a-z0-9-]{5,38}[0-9])\b/g;

/** Text with its task references as links to the task. */
export function linked(text) {
  const parts = [];
  let at = 0;
  for (const match of text.matchAll(REFERENCE)) {
    parts.push(text.slice(at, match.index));
    if (match[1]) {
      parts.push(h("a", { class: "task-ref", href: `#task/${match[1]}` }, match[0]));
    } else {
      parts.push(match[2], h("a", { class: "task-ref", href: `#task/${encodeURIComponent(match[3])}` }, match[3]));
    }
    at = match.index + match[0].length;
  }
  parts.push(text.slice(at));
  return parts;
}

function bubble(who, text) {
  return h("div", { class: `bubble ${who === "me" ? "me" : "them"}` }, linked(text));
}

export async function chatView(main) {
  const log = h("div", { class: "chat-log", id: "chat-log", "aria-live": "polite" });
  const input = h("textarea", { id: "chat-input", rows: 2, placeholder: "Add a --verbose flag… or: status, approve 3, cancel 3" });
  const send = h("button", { type: "submit", id: "chat-send" }, "Send");

  function add(who, text) {
    log.append(bubble(who, text));
    log.lastElementChild.scrollIntoView({ block: "end" });
  }

  // The history is the server's, per device: it follows a reload, a
  // restart and the app being closed.
  async function loadHistory() {
    const { lines } = await api("/chat?limit=200");
    replace(log, lines.map((line) => bubble(line.who, line.text)));
    if (log.lastElementChild) log.lastElementChild.scrollIntoView({ block: "end" });
  }

  const form = h(
    "form",
    { onsubmit: async (event) => {
      event.preventDefault();
      const message = input.value.trim();
      if (!message) return;
      input.value = "";
      add("me", message);
      send.disabled = true;
      try {
        await api("/chat", { method: "POST", body: { message } });
        await loadHistory();
      } catch (error) {
        // Refused: the server kept the exchange; read it. Not reached: say so.
        await loadHistory().catch(() => add("them", `⚠ ${error.message}`));
      } finally {
        send.disabled = false;
        input.focus();
      }
    } },
    h("label", { for: "chat-input" }, "Message"),
    input,
    h("p", {}, send),
  );
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.metaKey || event.ctrlKey)) form.requestSubmit();
  });
  replace(main, h("h1", { class: "sr-only" }, "Chat"), log, form);
  await loadHistory().catch(showError);

  const off = onLiveEvent((event) => {
    // A plan's news is written to the asking device's history with the
    // plan itself: read it from there.
    if (event.kind === "plan_created" || event.kind === "error" || event.kind === "resync") {
      loadHistory().catch(() => {});
    } else if (event.kind === "message" && event.payload.to === "person") {
      add("them", `Task ${event.task_id}: ${event.payload.text}`);
    }
  });
  return { leave: off };
}
