// Suggestions: what the scanner found, by kind and severity, with the
// evidence, and "Make it a task".

import { api } from "../api.js";
import { h, replace, inFlight } from "../dom.js";
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
          dismissControl(finding)))),
    )));
  }
  // Dismissing asks why in the page (never a browser dialog); the reason
  // is required and kept while other findings redraw.
  const reasons = new Map();
  function dismissControl(finding) {
    const box = h("span", { class: "row grow dismiss" });
    const ask = h("button", { class: "secondary", onclick: () => {
      const reason = h("input", {
        class: "grow dismiss-reason",
        placeholder: "Why dismiss it?",
        "aria-label": "Why dismiss it",
        oninput: (e) => reasons.set(finding.fingerprint, e.target.value),
      });
      reason.value = reasons.get(finding.fingerprint) || "";
      const send = h("button", { class: "danger dismiss-send", onclick: () => inFlight([send], async () => {
        const text = reason.value.trim();
        if (!text) {
          showError(new Error("Say why it is dismissed: the reason is kept in the audit log."));
          return;
        }
        try {
          await api(`/findings/${finding.fingerprint}/dismiss`, { method: "POST", body: { reason: text } });
          reasons.delete(finding.fingerprint);
          await render();
        } catch (error) {
          showError(error);
        }
      }) }, "Dismiss");
      const keep = h("button", { class: "secondary", onclick: () => replace(box, ask) }, "Keep");
      replace(box, reason, send, keep);
      reason.focus();
    } }, "Dismiss…");
    replace(box, ask);
    return box;
  }

  await render();
  return {};
}
