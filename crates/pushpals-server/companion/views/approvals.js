// Approvals: everything waiting for the person, one tap each.

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { onLiveEvent, showError } from "../app.js";

export async function approvalsView(main) {
  const list = h("div", { id: "approvals" });
  replace(main, h("h1", {}, "Waiting for you"), list);

  async function render() {
    const { approvals } = await api("/approvals?pending=true");
    if (!approvals.length) {
      replace(list, h("p", { class: "muted" }, "Nothing waits for you."));
      return;
    }
    replace(
      list,
      approvals.map((approval) => {
        const reason = h("input", { placeholder: "Why not (optional)", "aria-label": "Reason for denying" });
        const decide = async (decision) => {
          try {
            await api(`/approvals/${approval.id}/decide`, {
              method: "POST",
              body: decision === "deny" && reason.value ? { decision, reason: reason.value } : { decision },
            });
            await render();
          } catch (error) {
            showError(error);
          }
        };
        return h(
          "div",
          { class: "card", dataset: { approval: approval.id } },
          h("div", { class: "row" },
            h("strong", { class: "grow" }, approval.action),
            h("a", { href: `#task/${approval.task_id}` }, `task ${approval.task_id}`)),
          h("p", {}, approval.summary),
          h("div", { class: "row" },
            h("button", { onclick: () => decide("approve") }, "Approve"),
            h("span", { class: "grow" }, reason),
            h("button", { class: "danger", onclick: () => decide("deny") }, "Deny")),
        );
      }),
    );
  }

  await render();
  const off = onLiveEvent((event) => {
    if (event.kind.startsWith("approval_")) render().catch(() => {});
  });
  return { leave: off };
}
