// Chat: ask for work, ask how things stand, approve or cancel in words.
// Answers come at once from the orchestrator's state.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { onLiveEvent } from "../app.js";

const LOG_KEY = "pushpals.chat";

function load() {
  try { return JSON.parse(sessionStorage.getItem(LOG_KEY)) || []; } catch (_) { return []; }
}

export function chatView(main) {
  const entries = load();
  const log = h("div", { class: "chat-log", "aria-live": "polite" });
  const input = h("textarea", { id: "chat-input", rows: 2, placeholder: "Add a --verbose flag… or: status, approve 3, cancel 3" });
  const send = h("button", { type: "submit", id: "chat-send" }, "Send");

  function add(who, text) {
    entries.push({ who, text });
    while (entries.length > 100) entries.shift();
    sessionStorage.setItem(LOG_KEY, JSON.stringify(entries));
    log.append(h("div", { class: `bubble ${who}` }, text));
    log.lastElementChild.scrollIntoView({ block: "end" });
  }

  for (const entry of entries) log.append(h("div", { class: `bubble ${entry.who}` }, entry.text));

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
        const reply = await api("/chat", { method: "POST", body: { message } });
        add("them", reply.reply);
      } catch (error) {
        add("them", `⚠ ${error.message}`);
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

  const off = onLiveEvent((event) => {
    if (event.kind === "plan_created" && event.payload.tasks) {
      const titles = event.payload.tasks.map((t) => `#${t.seq} ${t.title}`).join("\n");
      add("them", `Plan ready: ${event.payload.summary}\n${titles}`);
    } else if (event.kind === "plan_created" && event.payload.awaiting_ok) {
      add("them", `Plan ${event.payload.plan_id} waits for your OK: say "ok ${event.payload.plan_id}".`);
    } else if (event.kind === "message" && event.payload.to === "person") {
      add("them", `Task ${event.task_id}: ${event.payload.text}`);
    }
  });
  return { leave: off };
}
