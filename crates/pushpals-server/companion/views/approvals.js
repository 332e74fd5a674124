// Approvals: everything waiting for the person, one tap each.

import { api } from "../api.js";
import { h, replace, inFlight } from "../dom.js";
import { onLiveEvent, showError, can } from "../app.js";

export async function approvalsView(main) {
  const list = h("div", { id: "approvals" });
  replace(main, h("h1", {}, "Waiting for you"), list);

  // What was typed as a reason survives re-renders (another approval
  // arriving redraws the list).
  const reasons = new Map();

  async function render() {
    const [{ approvals }, mayApprove] = await Promise.all([api("/approvals?pending=true"), can("approve")]);
    if (!approvals.length) {
      replace(list, h("p", { class: "muted" }, "Nothing waits for you."));
      return;
    }
    replace(
      list,
      approvals.map((approval) => {
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
            h("a", { href: `#task/${approval.task_id}` }, `task ${approval.task_id}`)),
          h("p", {}, approval.summary),
          mayApprove
            ? h("div", { class: "row" }, approve, h("span", { class: "grow" }, reason), deny)
            : h("p", { class: "muted read-only" }, "This device may only read: approve from one paired with --scope approve."),
        );
      }),
    );
  }

  await render();
  const off = onLiveEvent((event) => {
    if (event.kind.startsWith("approval_") || event.kind === "resync") render().catch(() => {});
  });
  return { leave: off };
}
