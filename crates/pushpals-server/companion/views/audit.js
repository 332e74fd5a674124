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

  const text = await api("/audit/export", { raw: true });
  const events = text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
  const kinds = [...new Set(events.map((e) => e.kind))].sort();
  for (const k of kinds) kind.append(h("option", { value: k }, k));

  function render() {
    const task = taskFilter.value.trim();
    const shown = events
      .filter((e) => (!kind.value || e.kind === kind.value) && (!task || e.task_id === task))
      .slice(-300)
      .reverse();
    replace(
      list,
      shown.map((e) =>
        h("li", {},
          h("span", { class: "kind" }, `${e.id} ${e.kind}`),
          " ",
          h("span", { class: "muted" }, `${e.time} ${e.actor}${e.task_id ? ` task ${e.task_id}` : ""}`),
          h("pre", {}, JSON.stringify(e.payload))),
      ),
    );
  }
  kind.addEventListener("change", render);
  taskFilter.addEventListener("input", render);
  render();

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
