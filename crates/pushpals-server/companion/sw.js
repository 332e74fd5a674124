// The service worker keeps the companion's shell for offline starts; API
// calls always go to the network.
const SHELL = "pushpals-shell-v1";
const FILES = ["/", "/style.css", "/app.js", "/api.js", "/dom.js", "/views/pair.js", "/views/chat.js",
  "/views/board.js", "/views/task.js", "/views/approvals.js", "/views/audit.js", "/views/settings.js",
  "/manifest.webmanifest", "/icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k)))));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.pathname.startsWith("/api/")) return;
  event.respondWith(fetch(event.request).catch(() => caches.match(event.request, { ignoreSearch: true })));
});
