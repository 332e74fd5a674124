// The companion's shell: pairing gate, screens by URL fragment, the live
// event stream shared by every screen.

import { api, follow, token, setToken } from "./api.js";
import { replace, visible } from "./dom.js";
import { chatView } from "./views/chat.js";
import { boardView } from "./views/board.js";
import { taskView } from "./views/task.js";
import { approvalsView } from "./views/approvals.js";
import { auditView } from "./views/audit.js";
import { settingsView } from "./views/settings.js";
import { suggestionsView } from "./views/suggestions.js";
import { pairView } from "./views/pair.js";

const views = {
  chat: chatView,
  board: boardView,
  task: taskView,
  approvals: approvalsView,
  audit: auditView,
  suggestions: suggestionsView,
  settings: settingsView,
};

const listeners = new Set();
let stopStream = null;
let current = null;

/** Screens subscribe to live events while they are shown. */
export function onLiveEvent(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

let scopesRead = null;

/** The scopes of this device's token, read once per pairing. */
export function deviceScopes() {
  if (!scopesRead) scopesRead = api("/status").then((s) => new Set(s.scopes || [])).catch(() => new Set());
  return scopesRead;
}

/** Whether this device may do what `scope` allows. */
export async function can(scope) {
  const scopes = await deviceScopes();
  return scopes.has(scope) || scopes.has("admin");
}

/** Shows an error for a few seconds. */
export function showError(error) {
  const box = document.getElementById("error");
  box.textContent = visible(error && error.message ? error.message : String(error));
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 6000);
  if (error && error.status === 401) {
    setToken(null);
    route();
  }
}

function startStream() {
  if (stopStream || !token()) return;
  const live = document.getElementById("live");
  stopStream = follow(
    (event) => {
      for (const listener of listeners) listener(event);
      if (event.kind === "approval_requested" || event.kind === "approval_decided") refreshPending();
    },
    (state) => {
      live.textContent = state === "live" ? "live" : "reconnecting…";
      const back = state === "live" && live.dataset.was === "offline";
      live.dataset.was = state === "live" ? "live" : "offline";
      live.classList.toggle("on", state === "live");
      // Back from offline: every screen reads its state again.
      if (back) resync();
    },
  );
}

/** Tells the shown screen to read its state again (`{kind: "resync"}`). */
function resync() {
  refreshPending();
  for (const listener of listeners) listener({ kind: "resync" });
}

// Back in the foreground (a phone woke up): read everything again.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && stopStream) resync();
});

async function refreshPending() {
  try {
    const { approvals } = await api("/approvals?pending=true");
    document.getElementById("pending-count").textContent = approvals.length ? String(approvals.length) : "";
  } catch (_) { /* shown elsewhere */ }
}

async function route() {
  const main = document.getElementById("view");
  const hash = location.hash.slice(1);
  if (current && current.leave) current.leave();
  current = null;
  const paired = Boolean(token()) && !hash.startsWith("pair=");
  // Before pairing there is nothing but pairing: no screens to go to.
  document.querySelector("nav.tabs").hidden = !paired;
  document.body.classList.toggle("paired", paired);
  if (!paired) {
    scopesRead = null;
    if (stopStream) { stopStream(); stopStream = null; }
    current = pairView(main, hash.startsWith("pair=") ? decodeURIComponent(hash.slice(5)) : "", () => {
      history.replaceState(null, "", "#chat");
      route();
    });
    return;
  }
  startStream();
  refreshPending();
  if (!route.checked) {
    route.checked = true;
    api("/status").then((status) => {
      document.getElementById("insecure").hidden = !status.insecure_http;
    }).catch(() => {});
  }
  const [name, ...rest] = hash.split("/");
  const view = views[name] || views.chat;
  for (const link of document.querySelectorAll(".tabs a")) {
    link.setAttribute("aria-current", link.dataset.view === (views[name] ? name : "chat") ? "page" : "false");
  }
  replace(main);
  try {
    current = await view(main, rest.map(decodeURIComponent));
  } catch (error) {
    showError(error);
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
  // A push arrived while a screen is open: it reads its state again.
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data && event.data.kind === "notice" && stopStream) resync();
    if (event.data && event.data.kind === "notice-error") {
      showError(new Error(`A notification arrived but this browser could not show it: ${event.data.error}`));
    }
  });
}
route();
