// Suggestions: what the scanner found, by kind and severity, with the
// evidence, and "Make it a task".

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { showError } from "../app.js";

const ORDER = { high: 0, medium: 1, low: 2 };

function place(finding) {
  if (finding.file && finding.line) return `${finding.file}:${finding.line}`;
  return finding.file || "the repository";
}

export async function suggestionsView(main) {
  const status = h("p", { class: "muted", id: "scan-status", role: "status" });
  const list = h("div", { id: "suggestions" });
  const scan = h("button", { id: "scan-now", onclick: async () => {
    scan.disabled = true;
    status.textContent = "Scanning…";
    try {
      const report = await api("/scan", { method: "POST", body: {} });
      status.textContent = `Scanned ${report.commit.slice(0, 12)}: ${report.changes.new} new, ${report.changes.fixed} fixed.` +
        (report.notes.length ? ` ${report.notes.join(" ")}` : "");
      await render();
    } catch (error) {
      showError(error);
      status.textContent = "";
    } finally {
      scan.disabled = false;
    }
  } }, "Scan now");
  replace(main, h("div", { class: "row" }, h("h1", { class: "grow" }, "Suggestions"), scan), status, list);

  async function render() {
    const { findings } = await api("/findings");
    if (!findings.length) {
      replace(list, h("p", { class: "muted" }, "Nothing to suggest. Scan to look again."));
      return;
    }
    const kinds = new Map();
    for (const finding of findings.slice().sort((a, b) => ORDER[a.severity] - ORDER[b.severity])) {
      if (!kinds.has(finding.kind)) kinds.set(finding.kind, []);
      kinds.get(finding.kind).push(finding);
    }
    replace(list, [...kinds.entries()].map(([kind, group]) => h("section", { dataset: { kind } },
      h("h2", {}, `${kind.replaceAll("_", " ")} (${group.length})`),
      group.map((finding) => h("div", { class: "card", dataset: { fingerprint: finding.fingerprint } },
        h("div", { class: "row" },
          h("span", { class: `state ${finding.severity === "high" ? "failed" : ""}` }, finding.severity),
          h("strong", { class: "grow" }, finding.title)),
        h("div", { class: "muted" }, place(finding)),
        h("details", {}, h("summary", {}, "Evidence"), h("pre", {}, JSON.stringify(finding.evidence, null, 2))),
        h("div", { class: "row" },
          h("button", { onclick: async () => {
            try {
              const task = await api("/proposals", { method: "POST", body: { findings: [finding.fingerprint] } });
              location.hash = `#task/${task.id}`;
            } catch (error) {
              showError(error);
            }
          } }, "Make it a task"),
          h("button", { class: "secondary", onclick: async () => {
            const reason = prompt("Why dismiss it?");
            if (!reason) return;
            try {
              await api(`/findings/${finding.fingerprint}/dismiss`, { method: "POST", body: { reason } });
              await render();
            } catch (error) {
              showError(error);
            }
          } }, "Dismiss")))),
    )));
  }
  await render();
  return {};
}
