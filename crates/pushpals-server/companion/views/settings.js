// Settings: this device, paired devices (admin), autonomy grants, the
// server.

import { api, setToken } from "../api.js";
import { h, replace } from "../dom.js";
import { showError } from "../app.js";

export async function settingsView(main) {
  const devices = h("div", { id: "devices" });
  const grants = h("div", { id: "grants" });
  const server = h("div", { id: "server", class: "card" });
  const forget = h("button", { class: "secondary", onclick: () => { setToken(null); location.hash = "#pair="; location.reload(); } }, "Unpair this device");
  replace(main, h("h1", {}, "Settings"), server, h("h2", {}, "Autonomy"), grants, h("h2", {}, "Devices"), devices, h("p", {}, forget));

  const status = await api("/status");
  replace(server,
    h("div", {}, `Repository: ${status.repo}`),
    h("div", {}, `Sandbox: ${status.runner_backend}`),
    h("div", {}, `Tasks at once: ${status.max_parallel}`),
    h("div", {}, `Model cost so far: $${Number(status.cost_usd || 0).toFixed(4)}`));

  try {
    const { grants: given } = await api("/grants");
    replace(grants, h("p", { class: "card" }, given.length
      ? `Granted: ${given.map((g) => g.kind).join(", ")}`
      : "Nothing is granted: commits, pushes and pull requests each ask you first."));
  } catch (error) {
    replace(grants, h("p", { class: "muted" }, error.message));
  }

  async function renderDevices() {
    try {
      const { devices: list } = await api("/devices");
      replace(devices, list.map((d) =>
        h("div", { class: "card row" },
          h("span", { class: "grow" }, d.name, h("div", { class: "muted" }, `${d.scopes} · since ${d.created_at}${d.revoked_at ? ` · revoked ${d.revoked_at}` : ""}`)),
          d.revoked_at || d.name === "admin" ? null : h("button", { class: "danger", onclick: async () => {
            try { await api(`/devices/${d.id}`, { method: "DELETE" }); await renderDevices(); } catch (error) { showError(error); }
          } }, "Revoke"))));
    } catch (error) {
      replace(devices, h("p", { class: "muted" }, error.status === 403 ? "Listing devices needs the admin token." : error.message));
    }
  }
  await renderDevices();
  return {};
}
