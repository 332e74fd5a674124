// Board: every task with state, branch, last step, checks and cost, kept
// current from the live stream.

import { api } from "../api.js";
import { h, replace, statePill, cost, throttled } from "../dom.js";
import { onLiveEvent, can } from "../app.js";
import { newTaskForm } from "./newtask.js";
import { chosenRepo, chooseRepo, repoNames } from "../repos.js";

export async function boardView(main) {
  const list = h("div", { id: "board" });
  const starter = h("section", { id: "new-task-box" });
  // With several repositories: a board per repository, or one across all.
  const switcher = h("select", { id: "repo-switch", "aria-label": "Repository", hidden: true });
  switcher.addEventListener("change", () => {
    chooseRepo(switcher.value);
    render().catch(() => {});
  });
  replace(main, h("h1", {}, "Board"), switcher, starter, list);
  // A device that may operate can start work here.
  Promise.all([can("operate"), api("/status")])
    .then(([mayOperate, status]) => {
      if (!mayOperate) return;
      const open = h("button", { id: "new-open", onclick: () => replace(starter, newTaskForm(status)) }, "New task");
      replace(starter, open);
    })
    .catch(() => {});

  // Only the newest of overlapping redraws may draw.
  let generation = 0;
  async function render() {
    const mine = ++generation;
    const status = await api("/status");
    const branches = new Map();
    const repoOf = new Map();
    try {
      const { tasks } = await api("/tasks");
      for (const task of tasks) {
        branches.set(task.id, task.branch);
        repoOf.set(task.id, task.repo);
      }
    } catch (_) { /* the summary is enough */ }
    if (mine !== generation) return;
    const names = repoNames(status);
    const several = names.length > 1;
    let chosen = chosenRepo();
    if (!names.includes(chosen)) chosen = "";
    switcher.hidden = !several;
    if (several) {
      replace(switcher,
        h("option", { value: "" }, "All repositories"),
        names.map((name) => h("option", { value: name, selected: name === chosen }, name)));
      switcher.value = chosen;
    }
    const shown = status.tasks.filter((task) => !chosen || repoOf.get(task.id) === chosen);
    if (!shown.length) {
      replace(list, h("p", { class: "muted" },
        chosen ? `No tasks in ${chosen} yet. Ask for something in Chat.` : "No tasks yet. Ask for something in Chat."));
      return;
    }
    replace(
      list,
      shown.slice().reverse().map((task) =>
        h(
          "a",
          { class: "card row link", href: `#task/${task.id}`, dataset: { task: task.id, state: task.state } },
          h("span", { class: "grow" },
            h("strong", {}, `#${task.seq} ${task.title}`),
            h("div", { class: "muted" },
              [several ? repoOf.get(task.id) : null, branches.get(task.id), task.last_step].filter(Boolean).join(" · ")),
            task.checks.length
              ? h("div", { class: "muted" }, task.checks.map((c) => `${c.name} ${c.passed ? "✓" : "✗"}`).join("  "))
              : null,
          ),
          h("span", { class: "muted" }, cost(task.usage)),
          statePill(task.state),
        ),
      ),
    );
  }

  await render();
  // At most four renders a second, however fast events come.
  const refresh = throttled(() => render().catch(() => {}), 250);
  const off = onLiveEvent(refresh);
  return { leave: () => { off(); refresh.cancel(); } };
}
