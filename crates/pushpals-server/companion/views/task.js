// One task: its timeline (live), its diff, what approving does, and the
// actions.

import { api } from "../api.js";
import { h, replace, statePill, cost, throttled, inFlight } from "../dom.js";
import { onLiveEvent, showError, can } from "../app.js";
import { ansi } from "../ansi.js";
import { renderArtifacts } from "./artifacts.js";
import { diffView, diffStat, parseDiff } from "../diff.js";

function summary(event) {
  const p = event.payload || {};
  switch (event.kind) {
    case "state_changed": return `${p.from} → ${p.to}${p.reason ? `: ${p.reason}` : ""}`;
    case "command_started": return `${p.step}: ${p.command}`;
    case "command_finished": return `${p.step}: ${p.outcome || p.error || ""}`;
    case "check_result": return `${p.check} ${p.passed ? "passed" : "failed"}`;
    case "artifact_published": return `${p.path} (${p.kind}, ${p.bytes} bytes)`;
    case "artifact_refused": return `${p.path}: ${p.reason}`;
    case "model_call": return `${p.model} (${p.purpose || (p.via ? `via the ${p.via}` : "")}): ${p.input_tokens}+${p.output_tokens} tokens${p.reply ? ` — ${p.reply}` : ""}${p.translated_to ? `, translated to ${p.translated_to}` : ""}`;
    case "agent_started": return `${p.agent} ${p.version || ""}${p.session_protocol ? ` over ${p.session_protocol}` : ""}${p.translated_to ? `, translated to ${p.translated_to}` : ""}`;
    case "agent_step": return agentStep(p);
    case "tool_call": return `${p.tool} ${typeof p.arguments === "object" ? JSON.stringify(p.arguments) : p.arguments || ""}${p.is_error ? " (error)" : ""}`;
    case "policy_decision": return `${p.decision || ""} ${p.command || ""}${p.reason ? ` — ${p.reason}` : ""}`;
    case "approval_requested": return `${p.action}: ${p.summary}`;
    case "approval_decided": return `${p.action} ${p.decision}${p.reason ? `: ${p.reason}` : ""}`;
    case "agent_finished": return p.summary;
    case "commit": return `${p.sha} on ${p.branch}`;
    case "base_fetched": return `starts from ${String(p.start_commit || "").slice(0, 12)}: ${p.why}`;
    case "base_fetch_failed": return `cannot fetch ${p.remote}/${p.branch}: ${p.error}${p.retry_in_secs ? `; trying again in ${p.retry_in_secs} s` : ""}${p.fallback ? `; starts from ${String(p.start_commit || "").slice(0, 12)} (${p.why})` : ""}`;
    case "message": return `to ${p.to}: ${p.text}`;
    case "error": return p.message;
    default: return "";
  }
}

// A step an external agent reported.
function agentStep(p) {
  switch (p.step) {
    case "init": return `session ${p.session || ""}`;
    case "message": return p.text || "";
    case "tool_call": return `${p.tool} ${p.command || p.file || p.input || ""}`;
    case "tool_result": return `${p.is_error ? "failed: " : ""}${p.output || ""}`;
    default: return "";
  }
}

/** Output longer than this shows folded, with a button for the rest. */
const FOLD_AT = 1200;

function outputText(text) {
  if (text.length <= FOLD_AT) return h("pre", {}, ansi(text));
  const pre = h("pre", { class: "folded" }, ansi(text.slice(0, FOLD_AT)));
  const more = h("button", {
    class: "secondary unfold",
    onclick: () => { replace(pre, ansi(text)); pre.classList.remove("folded"); more.remove(); },
  }, `Show the other ${(text.length - FOLD_AT).toLocaleString()} characters`);
  return [pre, more];
}

function eventItem(event) {
  if (event.kind === "output") {
    return h("li", { dataset: { kind: "output", id: String(event.id) } }, outputText(event.payload.text || ""));
  }
  return h(
    "li",
    { dataset: { kind: event.kind, id: String(event.id) } },
    h("span", { class: "kind" }, event.kind.replaceAll("_", " ")),
    " ",
    h("time", { class: "muted", datetime: event.time || "" }, localTime(event.time)),
    h("div", {}, summary(event)),
  );
}

/** The time in this device's zone, with the zone named ("14:03:07 CET"). */
function localTime(time) {
  if (!time) return "";
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return time;
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZoneName: "short" });
}

export async function taskView(main, [id]) {
  const header = h("div", { class: "card" });
  const actions = h("div", { class: "row", id: "task-actions" });
  const diffBox = h("section", { id: "task-diff" });
  const artifactsBox = h("section", { id: "task-artifacts" });
  const timeline = h("ol", { class: "timeline", id: "timeline" });
  // The timeline is read from its end; earlier pages on request. Output
  // follows the end while "Follow" is on.
  const earlier = h("button", { id: "timeline-earlier", class: "secondary", hidden: true, onclick: () => loadEarlier() }, "Show earlier events");
  const follow = h("input", { type: "checkbox", id: "timeline-follow", checked: true });
  const toEnd = h("button", { id: "timeline-end", class: "secondary", onclick: () => scrollToEnd() }, "Jump to the end");
  const timelineBar = h("div", { class: "row timeline-bar" },
    h("label", { class: "follow grow" }, follow, " Follow output"), toEnd);
  replace(
    main,
    header,
    actions,
    h("h2", {}, "Changes"),
    diffBox,
    artifactsBox,
    h("h2", {}, "Timeline"),
    timelineBar,
    earlier,
    timeline,
  );

  function scrollToEnd() {
    const lastItem = timeline.lastElementChild;
    if (lastItem) lastItem.scrollIntoView({ block: "end" });
  }

  const PAGE = 500;
  let firstId = null;
  function showEarlierButton(page) {
    earlier.hidden = page.length < PAGE;
    if (page.length) firstId = Number(page[0].id);
  }
  async function loadEarlier() {
    await inFlight([earlier], async () => {
      try {
        const { events } = await api(`/tasks/${encodeURIComponent(id)}/events?before=${firstId}&limit=${PAGE}`);
        const anchor = timeline.firstElementChild;
        timeline.prepend(...events.map(eventItem));
        showEarlierButton(events);
        if (anchor) anchor.scrollIntoView({ block: "start" });
      } catch (error) {
        showError(error);
      }
    });
  }

  // Only the newest of overlapping redraws may draw (an older, slower
  // answer would show a state the task has left).
  let taskDraws = 0;
  let diffDraws = 0;
  async function renderTask() {
    const mine = ++taskDraws;
    const view = await api(`/tasks/${encodeURIComponent(id)}`);
    if (mine !== taskDraws) return;
    const task = view.task;
    const pending = view.approvals.filter((a) => a.state === "pending");
    replace(
      header,
      h("div", { class: "row" }, h("h1", { class: "grow" }, `#${task.seq} ${task.title}`), statePill(task.state)),
      h("div", { class: "muted" }, [task.branch, cost(task.usage)].filter(Boolean).join(" · ")),
      task.agent ? h("p", {}, task.agent.prompt) : task.command ? h("pre", {}, task.command) : null,
      task.reason ? h("p", { class: "warn" }, task.reason) : null,
      pending.map((a) => h("p", { class: "approval-summary" }, `Approving ${a.action}: ${a.summary}`)),
    );
    // A reason being typed is kept when the task redraws.
    const reason = h("input", { id: "deny-reason", placeholder: "Why not (optional)", oninput: (e) => { typedReason = e.target.value; } });
    reason.value = typedReason;
    const approve = h("button", { id: "approve", onclick: () => decide("approve") }, `Approve ${pending[0] ? pending[0].action : ""}`);
    const deny = h("button", { id: "deny", class: "danger", onclick: () => decide("deny", reason.value) }, "Deny");
    decisionButtons = [approve, deny];
    const [mayApprove, mayOperate] = await Promise.all([can("approve"), can("operate")]);
    if (mine !== taskDraws) return;
    const live = ["queued", "preparing", "running", "waiting", "checking", "awaiting_approval"].includes(task.state);
    const ended = ["failed", "cancelled", "no_changes", "rejected", "committed", "interrupted"].includes(task.state);
    replace(
      actions,
      ended && mayOperate ? continueControl(task) : null,
      pending.length && mayApprove ? [approve, h("span", { class: "grow" }, reason), deny] : null,
      pending.length && !mayApprove ? h("p", { class: "muted" }, "This device may only read: approve from one paired with --scope approve.") : null,
      live && mayOperate ? cancelControl() : null,
    );
  }

  let typedReason = "";
  let decisionButtons = [];
  function decide(decision, reason) {
    return inFlight(decisionButtons, async () => {
      try {
        await api(`/tasks/${encodeURIComponent(id)}/${decision}`, { method: "POST", body: reason ? { reason } : {} });
        typedReason = "";
        await renderTask();
      } catch (error) {
        showError(error);
      }
    });
  }

  // An ended task runs again in its worktree: an agent task with the
  // person's feedback, a command task with a new command or its own again.
  let typedNext = "";
  function continueControl(task) {
    const agent = Boolean(task.agent);
    const next = h(agent ? "textarea" : "input", {
      id: "continue-text",
      rows: agent ? 3 : undefined,
      placeholder: agent ? "Feedback for the agent's next run" : "A new command, or empty to run it again",
      "aria-label": agent ? "Feedback" : "Command for the next run",
      oninput: (e) => { typedNext = e.target.value; },
    });
    next.value = typedNext;
    const run = h("button", {
      id: "continue-run",
      onclick: () => inFlight([run], async () => {
        try {
          const text = next.value.trim();
          await api(`/tasks/${encodeURIComponent(id)}/continue`, { method: "POST", body: text ? { command: text } : {} });
          typedNext = "";
          await renderTask();
        } catch (error) {
          showError(error);
        }
      }),
    }, agent ? "Continue with feedback" : next.value ? "Run this" : "Run again");
    return h("div", { class: "continue grow" }, next, run);
  }

  // Cancelling asks once more, in the page (never a browser dialog).
  let confirming = false;
  function cancelControl() {
    if (!confirming) {
      return h("button", { id: "cancel", class: "secondary", onclick: () => { confirming = true; renderTask(); } }, "Cancel task");
    }
    return h("span", { class: "row", id: "cancel-confirm" },
      h("span", {}, "Cancel this task?"),
      h("button", { id: "cancel-yes", class: "danger", onclick: cancel }, "Yes, cancel it"),
      h("button", { id: "cancel-no", class: "secondary", onclick: () => { confirming = false; renderTask(); } }, "Keep it running"));
  }

  async function cancel() {
    confirming = false;
    try {
      await api(`/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST", body: {} });
      await renderTask();
    } catch (error) {
      showError(error);
    }
  }

  async function renderDiff() {
    const mine = ++diffDraws;
    try {
      const diff = await api(`/tasks/${encodeURIComponent(id)}/diff`);
      if (mine !== diffDraws) return;
      const files = parseDiff(diff.diff);
      replace(
        diffBox,
        diff.secret_findings.length
          ? h("p", { class: "warn" }, `The secret gate blocks this commit: ${diff.secret_findings.map((f) => `${f.file}:${f.line} ${f.rule}`).join(", ")}`)
          : null,
        diff.diff ? h("details", { class: "card", id: "commit-message" }, h("summary", {}, `Proposed commit: ${diffStat(files)}`), h("pre", {}, diff.commit_message)) : null,
        diff.diff ? h("details", { class: "card", id: "pr-text" }, h("summary", {}, "Pull request text"), h("pre", {}, diff.pr_text)) : null,
        diffView(files),
      );
    } catch (error) {
      replace(diffBox, h("p", { class: "muted" }, error.message));
    }
  }

  // Listen before reading the history, so nothing falls between the two;
  // what arrives meanwhile waits until the history is shown.
  let lastId = 0;
  let early = [];
  let diffStale = false;
  // At most five redraws a second while output streams (a debounce would
  // never redraw until the stream stopped).
  const refresh = throttled(() => {
    renderTask().catch(() => {});
    if (diffStale) {
      diffStale = false;
      renderDiff();
    }
  }, 200);
  function live(event) {
    if (event.kind === "resync") {
      diffStale = true;
      refresh();
      renderArtifacts(artifactsBox, id);
      return;
    }
    if (event.task_id !== id || Number(event.id) <= lastId) return;
    lastId = Number(event.id);
    // Follows only a reader already at the end: one reading the diff or
    // earlier output stays where they are.
    const atEnd = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
    timeline.append(eventItem(event));
    if (follow.checked && atEnd) scrollToEnd();
    if (["diff", "commit", "state_changed", "tool_call", "agent_step", "command_finished"].includes(event.kind)) diffStale = true;
    if (event.kind === "artifact_published") renderArtifacts(artifactsBox, id);
    refresh();
  }
  const off = onLiveEvent((event) => (early ? early.push(event) : live(event)));

  const { events } = await api(`/tasks/${encodeURIComponent(id)}/events?last=true&limit=${PAGE}`);
  timeline.append(...events.map(eventItem));
  for (const event of events) lastId = Math.max(lastId, Number(event.id));
  showEarlierButton(events);
  await Promise.all([renderTask(), renderDiff(), renderArtifacts(artifactsBox, id)]);
  const waiting = early;
  early = null;
  for (const event of waiting) live(event);

  return { leave: () => { off(); refresh.cancel(); } };
}
