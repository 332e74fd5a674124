// Approvals: everything waiting for the person, one tap each.

import { api } from "../api.js";
import { h, replace, inFlight } from "../dom.js";
import { onLiveEvent, showError, can } from "../app.js";
import { diffStat, parseDiff } from "../diff.js";

// What a person decides on besides the action: the task's title, its
// checks and what the change touches. Read once per approval.
const details = new Map();
function taskDetails(approval) {
  if (!details.has(approval.id)) {
    const id = encodeURIComponent(approval.task_id);
    details.set(approval.id, Promise.all([api(`/tasks/${id}`), api(`/tasks/${id}/diff`).catch(() => null)])
      .then(([view, diff]) => ({
        title: `#${view.task.seq} ${view.task.title}`,
        checks: (view.progress && view.progress.checks) || [],
        stat: diff && diff.diff ? diffStat(parseDiff(diff.diff)) : "no changes",
      }))
      .catch(() => null));
  }
  return details.get(approval.id);
}

export async function approvalsView(main) {
  const list = h("div", { id: "approvals" });
  replace(main, h("h1", {}, "Waiting for you"), list);

  // What was typed as a reason survives re-renders (another approval
  // arriving redraws the list).
  const reasons = new Map();

  // Renders overlap (an event arrives while one is reading): only the
  // newest may draw, so an older, slower answer never hides a newer one.
  let generation = 0;
  async function render() {
    const mine = ++generation;
    const [{ approvals }, mayApprove] = await Promise.all([api("/approvals?pending=true"), can("approve")]);
    const about = await Promise.all(approvals.map(taskDetails));
    if (mine !== generation) return;
    if (!approvals.length) {
      replace(list, h("p", { class: "muted" }, "Nothing waits for you."));
      return;
    }
    replace(
      list,
      mayApprove && approvals.length > 1 ? denyAllControl(approvals) : null,
      approvals.map((approval, index) => {
        const task = about[index];
        const reason = h("input", {
          placeholder: "Why not (optional)",
          "aria-label": "Reason for denying",
          oninput: (event) => reasons.set(approval.id, event.target.value),
        });
        reason.value = reasons.get(approval.id) || "";
        const approve = h("button", { class: "approve", onclick: () => decide("approve") }, "Approve");
        const deny = h("button", { class: "danger deny", onclick: () => decide("deny") }, "Deny");
        const decide = (decision) => inFlight([approve, deny], async () => {
          try {
            await api(`/approvals/${approval.id}/decide`, {
              method: "POST",
              body: decision === "deny" && reason.value ? { decision, reason: reason.value } : { decision },
            });
            reasons.delete(approval.id);
            await render();
          } catch (error) {
            showError(error);
          }
        });
        return h(
          "div",
          { class: "card", dataset: { approval: approval.id } },
          h("div", { class: "row" },
            h("strong", { class: "grow" }, approval.action),
            h("a", { class: "task-link", href: `#task/${approval.task_id}` }, task ? task.title : `task ${approval.task_id}`)),
          h("p", {}, approval.summary),
          task ? h("div", { class: "muted approval-facts" },
            h("span", { class: "diff-stat" }, task.stat),
            task.checks.map((c) => h("span", { class: `check ${c.passed ? "passed" : "failed"}` }, ` · ${c.name} ${c.passed ? "passed" : "failed"}`))) : null,
          mayApprove
            ? h("div", { class: "row" }, approve, h("span", { class: "grow" }, reason), deny)
            : h("p", { class: "muted read-only" }, "This device may only read: approve from one paired with --scope approve."),
        );
      }),
    );
  }

  // Denying every pending approval asks once more, in the page.
  let confirmingAll = false;
  function denyAllControl(approvals) {
    if (!confirmingAll) {
      return h("div", { class: "row" }, h("span", { class: "grow" }),
        h("button", { id: "deny-all", class: "secondary", onclick: () => { confirmingAll = true; render().catch(showError); } }, `Deny all ${approvals.length}`));
    }
    const yes = h("button", { id: "deny-all-yes", class: "danger", onclick: () => inFlight([yes], async () => {
      confirmingAll = false;
      try {
        for (const approval of approvals) {
          await api(`/approvals/${approval.id}/decide`, { method: "POST", body: { decision: "deny", reason: "denied with all others" } });
        }
      } catch (error) {
        showError(error);
      }
      await render();
    }) }, `Yes, deny all ${approvals.length}`);
    return h("div", { class: "row card", id: "deny-all-confirm" },
      h("span", { class: "grow" }, `Deny all ${approvals.length} waiting approvals?`),
      yes,
      h("button", { id: "deny-all-no", class: "secondary", onclick: () => { confirmingAll = false; render().catch(showError); } }, "Keep them"));
  }

  await render();
  const off = onLiveEvent((event) => {
    if (event.kind.startsWith("approval_") || event.kind === "resync") render().catch(() => {});
  });
  return { leave: off };
}
