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
  const policy = h("div", { id: "policy" });
  const notices = h("div", { id: "notifications", class: "card" });
  replace(main, h("h1", {}, "Settings"), server, h("h2", {}, "Notifications"), notices, h("h2", {}, "Autonomy"), grants, h("h2", {}, "Devices"), devices,
    h("h2", {}, "Command policy"), policy, h("p", {}, forget));

  const status = await api("/status");
  replace(server,
    h("div", {}, `Repositories: ${(status.repos || []).map((r) => r.name).join(", ") || "none yet"}`),
    h("div", {}, `Sandbox: ${status.runner_backend}`),
    h("div", {}, `Tasks at once: ${status.max_parallel}`),
    h("div", {}, `Model cost so far: $${Number(status.cost_usd || 0).toFixed(4)}`));

  renderNotifications(notices);

  const KINDS = ["auto-commit", "auto-push", "auto-pr"];
  async function renderGrants() {
    try {
      const { grants: given } = await api("/grants");
      const held = new Set(given.map((g) => g.kind));
      replace(grants, h("div", { class: "card" },
        h("p", { class: "muted" }, "Without a grant, commits, pushes and pull requests each ask you first. Changing grants needs the admin token."),
        KINDS.map((kind) => {
          const box = h("input", { type: "checkbox", id: `grant-${kind}`, checked: held.has(kind) });
          box.addEventListener("change", async () => {
            try {
              await api(`/grants/${kind}`, { method: box.checked ? "PUT" : "DELETE" });
            } catch (error) {
              showError(error);
            }
            await renderGrants();
          });
          return h("label", { class: "grant" }, box, kind);
        })));
    } catch (error) {
      replace(grants, h("p", { class: "muted" }, error.message));
    }
  }
  await renderGrants();

  try {
    const { rules } = await api("/policy");
    replace(policy, h("details", { class: "card" }, h("summary", {}, `${rules.length} rules in force`),
      rules.map((r) => h("div", { class: "row" },
        h("span", { class: `state ${r.decision}` }, r.decision),
        h("span", { class: "grow" }, [r.programs.join("|"), ...r.prefix, ...(r.any_arg.length ? [`[any of ${r.any_arg.join(" ")}]`] : [])].join(" ")),
        h("span", { class: "muted" }, `${r.source}: ${r.reason}`)))));
  } catch (error) {
    replace(policy, h("p", { class: "muted" }, error.message));
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

function decodeKey(base64url) {
  const raw = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/** Web Push on this device: on when asked, through the service worker. */
async function renderNotifications(box) {
  const supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  if (!supported) {
    replace(box, h("p", { class: "muted" }, "This browser cannot receive push notifications (they need HTTPS and a service worker)."));
    return;
  }
  const registration = await navigator.serviceWorker.ready;
  const current = await registration.pushManager.getSubscription();
  const status = h("p", { class: "muted", role: "status" },
    current ? "This device gets a notification when an approval is requested and when a task ends." : "Notifications are off on this device.");
  const toggle = h("button", { id: "push-toggle", class: current ? "secondary" : "", onclick: async () => {
    try {
      if (current) {
        await api("/push/subscriptions", { method: "DELETE", body: { endpoint: current.endpoint } }).catch(() => {});
        await current.unsubscribe();
      } else {
        if ((await Notification.requestPermission()) !== "granted") throw new Error("notifications were not allowed");
        const { public_key: key } = await api("/push/key");
        const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: decodeKey(key) });
        await api("/push/subscriptions", { method: "POST", body: subscription.toJSON() });
      }
      await renderNotifications(box);
    } catch (error) {
      status.textContent = `Could not change notifications: ${error.message}`;
    }
  } }, current ? "Turn notifications off" : "Turn notifications on");
  replace(box, status, toggle);
}
