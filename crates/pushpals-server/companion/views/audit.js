// Audit: the event log, filterable by kind, the chain's verification, and
// an export.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { showError } from "../app.js";

export async function auditView(main) {
  const verdict = h("p", { id: "audit-verdict", class: "card" }, "Verifying…");
  const kind = h("select", { id: "audit-kind", "aria-label": "Event kind" }, h("option", { value: "" }, "all kinds"));
  const taskFilter = h("input", { id: "audit-task", placeholder: "task id (all tasks when empty)", "aria-label": "Task" });
  const list = h("ol", { class: "timeline", id: "audit-events" });
  const exportButton = h("button", { class: "secondary", onclick: exportLog }, "Export (JSON lines)");
  replace(main, h("h1", {}, "Audit"), verdict, h("div", { class: "row" }, h("span", { class: "grow" }, kind), h("span", { class: "grow" }, taskFilter), exportButton), list);

  const report = await api("/audit/verify");
  verdict.textContent = report.ok
    ? `The chain verifies: ${report.checked} events, head ${report.head_id} (${String(report.head_hash || "").slice(0, 16)}…).`
    : `The chain is BROKEN at event ${report.first_broken_event}: ${report.problem || ""}`;

  // The log is read a page at a time from its newest event; filters are
  // the server's, so a page is always full when it can be.
  const PAGE = 200;
  const older = h("button", { id: "audit-older", class: "secondary", hidden: true, onclick: () => load(false) }, "Show older events");
  main.append(older);
  let oldest = null;
  let generation = 0;

  function item(e) {
    return h("li", {},
      h("span", { class: "kind" }, `${e.id} ${e.kind}`),
      " ",
      h("span", { class: "muted" }, `${e.time} ${e.actor}${e.task_id ? ` task ${e.task_id}` : ""}`),
      h("pre", {}, JSON.stringify(e.payload)));
  }

  async function load(fresh) {
    const mine = fresh ? ++generation : generation;
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (!fresh && oldest !== null) query.set("before", String(oldest));
    if (kind.value) query.set("kind", kind.value);
    if (taskFilter.value.trim()) query.set("task", taskFilter.value.trim());
    try {
      const page = await api(`/audit/events?${query}`);
      if (mine !== generation) return; // a newer filter won
      if (fresh) {
        replace(list);
        const chosen = kind.value;
        replace(kind, h("option", { value: "" }, "all kinds"), page.kinds.map((k) => h("option", { value: k }, k)));
        kind.value = chosen;
      }
      list.append(...page.events.slice().reverse().map(item));
      if (page.events.length) oldest = Number(page.events[0].id);
      older.hidden = page.events.length < PAGE;
    } catch (error) {
      showError(error);
    }
  }
  kind.addEventListener("change", () => load(true));
  taskFilter.addEventListener("change", () => load(true));
  await load(true);

  async function exportLog() {
    try {
      const body = await api("/audit/export", { raw: true });
      const url = URL.createObjectURL(new Blob([body], { type: "application/x-ndjson" }));
      const link = h("a", { href: url, download: "pushpals-audit.jsonl" });
      document.body.append(link);
      link.click();
      link.remove();
      URL.revokeObjectURL(url);
    } catch (error) {
      showError(error);
    }
  }
  return {};
}
