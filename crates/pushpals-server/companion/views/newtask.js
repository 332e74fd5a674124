// Starting work from the phone: a command task always; an agent task when
// a model is configured, by the built-in agent or an external one. The
// server judges and refuses as for any other client; its message shows.

import { api } from "../api.js";
import { h, inFlight } from "../dom.js";
import { showError } from "../app.js";
import { chosenRepo, repoNames } from "../repos.js";

/** The form, for a status that names the configured models and agents. */
export function newTaskForm(status) {
  const canAgent = (status.models || []).length > 0;
  const names = repoNames(status);
  // With several repositories the task names one; the board's choice first.
  const repo = h("select", { id: "new-repo", "aria-label": "Repository", hidden: names.length < 2 },
    names.map((name) => h("option", { value: name, selected: name === chosenRepo() }, name)));
  const title = h("input", { id: "new-title", placeholder: "What to do, in one line", "aria-label": "Title" });
  const kind = h("select", { id: "new-kind", "aria-label": "Kind of task" },
    h("option", { value: "command" }, "Run a command"),
    canAgent ? h("option", { value: "agent" }, "Ask an agent") : null);
  const command = h("input", { id: "new-command", placeholder: "cargo test", "aria-label": "Command line" });
  const prompt = h("textarea", { id: "new-prompt", rows: 4, placeholder: "What the agent should do", "aria-label": "Brief", hidden: true });
  const agent = h("select", { id: "new-agent", "aria-label": "Agent", hidden: true },
    h("option", { value: "" }, "Built-in agent"),
    (status.agents || []).map((name) => h("option", { value: name }, name)));
  kind.addEventListener("change", () => {
    const isAgent = kind.value === "agent";
    command.hidden = isAgent;
    prompt.hidden = !isAgent;
    agent.hidden = !isAgent;
  });
  const submit = h("button", { id: "new-submit", type: "submit" }, "Start");
  const form = h("form", {
    id: "new-task",
    class: "card",
    onsubmit: (event) => {
      event.preventDefault();
      inFlight([submit], async () => {
        const body = { title: title.value.trim() };
        if (repo.value) body.repo = repo.value;
        if (kind.value === "agent") {
          body.agent = { prompt: prompt.value.trim() };
          if (agent.value) body.agent.external = agent.value;
        } else {
          body.command = command.value.trim();
        }
        try {
          const task = await api("/tasks", { method: "POST", body });
          location.hash = `#task/${task.id}`;
        } catch (error) {
          showError(error);
        }
      });
    },
  }, h("h2", {}, "New task"), repo, title, kind, command, prompt, agent, submit);
  return form;
}
