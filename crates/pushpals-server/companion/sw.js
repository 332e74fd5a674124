// The service worker keeps the companion's shell for offline starts; API
// calls always go to the network.
const SHELL = "pushpals-shell-dev"; // named by the files' hash when served

const FILES = ["/", "/style.css", "/app.js", "/api.js", "/dom.js", "/repos.js", "/ansi.js", "/views/pair.js", "/views/chat.js",
  "/views/board.js", "/views/suggestions.js", "/views/task.js", "/views/artifacts.js", "/views/newtask.js", "/views/approvals.js", "/views/audit.js", "/views/settings.js",
  "/diff.js", "/manifest.webmanifest", "/icon.svg", "/apple-touch-icon.png", "/icon-192.png", "/icon-512.png"];

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

// A notice from the server (decrypted by the browser): show it, open its
// screen when tapped, and tell open screens so they read their state again.
self.addEventListener("push", (event) => {
  let notice = { title: "Push Pals", body: "", url: "/#approvals" };
  try { notice = { ...notice, ...event.data.json() }; } catch (_) { /* keep the default */ }
  event.waitUntil((async () => {
    const windows = await clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) client.postMessage({ kind: "notice", title: notice.title, url: notice.url });
    try {
      await self.registration.showNotification(notice.title, {
        body: notice.body,
        icon: "/icon-192.png",
        tag: notice.url,
        data: { url: notice.url },
      });
    } catch (error) {
      for (const client of windows) client.postMessage({ kind: "notice-error", error: String(error) });
      throw error;
    }
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil((async () => {
    const windows = await clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if ("focus" in client) {
        await client.navigate(url).catch(() => {});
        return client.focus();
      }
    }
    return clients.openWindow(url);
  })());
});
