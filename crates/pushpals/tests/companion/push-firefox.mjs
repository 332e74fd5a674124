// Push notifications end to end in a real browser: Debian's Firefox ESR,
// driven over WebDriver (geckodriver), with its push service pointed at a
// push server this script runs on loopback. That server speaks Mozilla's
// WebSocket push protocol to Firefox (hello, register, notification, ack)
// and Web Push over HTTP to Push Pals (POST to the endpoint it handed out).
//
// The companion subscribes from Settings; Push Pals encrypts a notice for
// that subscription (RFC 8291, VAPID); the push server relays the bytes
// unopened; Firefox decrypts them and wakes the service worker, which shows
// the notification and tells the page. Then the push server says the
// subscription is gone (410) and Push Pals must drop it (checked by the
// Rust side in the database).
//
// Inputs (environment): PUSHPALS_GECKODRIVER, PUSHPALS_FIREFOX (binaries),
// and what browser.mjs reads.
import { createServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { check, code, shots, url } from "./browser.mjs";

const require = createRequire(`${process.env.PUSHPALS_NODE_MODULES}/`);
const { WebSocketServer } = require("ws");

// --- The push server --------------------------------------------------
const uaid = randomUUID().replaceAll("-", "");
const channels = new Map(); // channelID -> its socket
const gone = new Set(); // channelIDs that answer 410
const received = []; // what Push Pals posted
const acks = []; // what Firefox acknowledged
const seen = []; // message types Firefox sent

const pushHttp = createServer((request, response) => {
  const match = /^\/wpush\/([0-9a-f-]{36})$/.exec(request.url);
  if (request.method !== "POST" || !match) {
    response.writeHead(404).end();
    return;
  }
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const channelID = match[1];
    const body = Buffer.concat(chunks);
    received.push({ channelID, headers: request.headers, bytes: body.length });
    const socket = channels.get(channelID);
    if (gone.has(channelID) || !socket) {
      response.writeHead(410).end();
      return;
    }
    const version = randomUUID();
    socket.send(JSON.stringify({
      messageType: "notification",
      channelID,
      version,
      data: body.toString("base64url"),
      headers: { encoding: request.headers["content-encoding"] },
    }));
    response.writeHead(201, { Location: `/m/${version}`, TTL: request.headers.ttl || "0" }).end();
  });
});

const sockets = new WebSocketServer({ server: pushHttp });
sockets.on("connection", (socket) => {
  socket.on("message", (raw) => {
    let message;
    try { message = JSON.parse(raw.toString()); } catch (_) { return; }
    seen.push(message.messageType === "nack" ? `nack ${JSON.stringify(message)}` : message.messageType || "ping");
    switch (message.messageType) {
      case "hello":
        socket.send(JSON.stringify({ messageType: "hello", status: 200, uaid, use_webpush: true }));
        break;
      case "register":
        channels.set(message.channelID, socket);
        socket.send(JSON.stringify({
          messageType: "register",
          status: 200,
          uaid,
          channelID: message.channelID,
          pushEndpoint: `http://127.0.0.1:${pushHttp.address().port}/wpush/${message.channelID}`,
        }));
        break;
      case "unregister":
        channels.delete(message.channelID);
        socket.send(JSON.stringify({ messageType: "unregister", status: 200, channelID: message.channelID }));
        break;
      case "ack":
        acks.push(...(message.updates || []));
        break;
      case undefined:
        socket.send("{}"); // a ping
        break;
      default:
        break;
    }
  });
});
await new Promise((resolve) => pushHttp.listen(0, "127.0.0.1", resolve));
const pushPort = pushHttp.address().port;

// --- WebDriver --------------------------------------------------------
async function freePort() {
  const server = createTcpServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const driverPort = await freePort();
const driverLog = [];
const driver = spawn(process.env.PUSHPALS_GECKODRIVER, ["--host", "127.0.0.1", "--port", String(driverPort)], {
  stdio: ["ignore", "pipe", "pipe"],
});
driver.stdout.on("data", (chunk) => driverLog.push(chunk.toString()));
driver.stderr.on("data", (chunk) => driverLog.push(chunk.toString()));
const base = `http://127.0.0.1:${driverPort}`;

async function wd(method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(json.value)}`);
  return json.value;
}

for (let i = 0; i < 100; i++) {
  try { await wd("GET", "/status"); break; } catch (_) { await new Promise((r) => setTimeout(r, 100)); }
}

let session = null;
let failed = false;
let stage = "start";
const at = (path) => `/session/${session}${path}`;
// An element reference is an object with one key (the web element
// identifier); its value is the id.
const find = async (css) => Object.values(await wd("POST", at("/element"), { using: "css selector", value: css }))[0];
const run = (script, ...args) => wd("POST", at("/execute/sync"), { script, args });
const runAsync = (script, ...args) => wd("POST", at("/execute/async"), { script, args });

async function until(what, probe, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

try {
  stage = "starting Firefox";
  const created = await wd("POST", "/session", {
    capabilities: {
      alwaysMatch: {
        browserName: "firefox",
        "moz:firefoxOptions": {
          binary: process.env.PUSHPALS_FIREFOX || "/usr/bin/firefox-esr",
          args: ["-headless"],
          // A fresh profile (geckodriver's) where nothing reaches past
          // loopback on its own.
          prefs: {
            "dom.push.enabled": true,
            "dom.push.connection.enabled": true,
            "dom.push.serverURL": `ws://127.0.0.1:${pushPort}/`,
            "dom.push.testing.allowInsecureServerURL": true,
            "permissions.default.desktop-notification": 1,
            // Notifications in a window of its own: headless has no desktop
            // notification service.
            "alerts.useSystemBackend": false,
            "services.settings.server": "http://127.0.0.1:9/",
            "network.connectivity-service.enabled": false,
            "network.captive-portal-service.enabled": false,
            "network.trr.mode": 5,
            "network.dns.disablePrefetch": true,
            "network.prefetch-next": false,
            "browser.safebrowsing.malware.enabled": false,
            "browser.safebrowsing.phishing.enabled": false,
            "browser.safebrowsing.downloads.enabled": false,
            "browser.safebrowsing.blockedURIs.enabled": false,
            "datareporting.policy.dataSubmissionEnabled": false,
            "datareporting.healthreport.uploadEnabled": false,
            "toolkit.telemetry.enabled": false,
            "app.normandy.enabled": false,
            "app.update.auto": false,
            "extensions.update.enabled": false,
            "extensions.getAddons.cache.enabled": false,
            "media.gmp-manager.updateEnabled": false,
            "browser.search.update": false,
          },
        },
      },
    },
  });
  session = created.sessionId;
  await wd("POST", at("/timeouts"), { implicit: 15000, script: 60000 });
  await wd("POST", at("/window/rect"), { width: 390, height: 844 });

  stage = "pairing";
  await wd("POST", at("/url"), { url: `${url}/#pair=${code}` });
  const device = await find("#pair-device");
  await wd("POST", at(`/element/${device}/clear`), {});
  await wd("POST", at(`/element/${device}/value`), { text: "firefox-phone" });
  await wd("POST", at(`/element/${await find("button[type=submit]")}/click`), {});
  await find("#chat-input");

  stage = "subscribing from Settings";
  await wd("POST", at("/url"), { url: `${url}/#settings` });
  await until("the service worker", () => run("return navigator.serviceWorker.controller !== null || document.readyState === 'complete';"));
  await run("return navigator.serviceWorker.ready.then(() => true);");
  await wd("POST", at(`/element/${await find("#push-toggle")}/click`), {});
  await until("the subscription", () => run("return document.body.innerText.includes('This device gets a notification');"));
  check(seen.includes("hello") && seen.includes("register"), `Firefox said hello and registered with the push server (${seen})`);
  const endpoint = await runAsync("const done = arguments[arguments.length - 1]; navigator.serviceWorker.ready.then((r) => r.pushManager.getSubscription()).then((s) => done(s && s.endpoint));");
  check(endpoint && endpoint.startsWith(`http://127.0.0.1:${pushPort}/wpush/`), `the subscription's endpoint is the local push server (${endpoint})`);
  const token = await run("return localStorage.getItem('pushpals.token');");
  const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const listed = await (await fetch(`${url}/api/v1/push/subscriptions`, { headers })).json();
  check(listed.subscriptions.length === 1 && listed.subscriptions[0].token_name.endsWith(":firefox-phone"), `Push Pals keeps the subscription: ${JSON.stringify(listed)}`);

  stage = "a notice arrives";
  await run("window.__notices = []; navigator.serviceWorker.addEventListener('message', (e) => window.__notices.push(e.data)); return true;");
  const task = await (await fetch(`${url}/api/v1/tasks`, {
    method: "POST",
    headers,
    body: JSON.stringify({ title: "Ping the phone", command: "echo hi > hi.txt" }),
  })).json();
  const notices = await until("the service worker's message", async () => {
    const list = await run("return window.__notices;");
    return list.length ? list : null;
  }, 90000);
  const expected = 'Approval needed: commit for "Ping the phone"';
  check(notices[0].kind === "notice" && notices[0].title === expected, `the page heard the decrypted notice: ${JSON.stringify(notices)}`);
  // The page is told first; the notification shows a moment later.
  const titles = () => runAsync("const done = arguments[arguments.length - 1]; navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((list) => done(list.map((n) => n.title)));");
  const shown = await until("the notification", async () => {
    const list = await titles();
    return list.includes(expected) ? list : null;
  }, 15000).catch(async () => titles());
  check(shown.includes(expected), `the notification shows with its title: ${JSON.stringify(shown)}; the page heard ${JSON.stringify(await run("return window.__notices;"))}`);
  const posted = received[0];
  check(posted.headers["content-encoding"] === "aes128gcm" && /^vapid t=/.test(posted.headers.authorization || ""), `Push Pals sent an encrypted, VAPID-signed push: ${JSON.stringify(posted.headers)}`);
  check(acks.length >= 1 && acks[0].channelID === posted.channelID, `Firefox acknowledged it (${JSON.stringify(acks)})`);
  const shot = await wd("GET", at("/screenshot"));
  writeFileSync(`${shots}/firefox-settings-390x844.png`, Buffer.from(shot, "base64"));

  stage = "a gone subscription";
  gone.add(posted.channelID);
  const before = received.length;
  const approved = await fetch(`${url}/api/v1/tasks/${task.id}/approve`, { method: "POST", headers, body: "{}" });
  check(approved.ok, `the task was approved (${approved.status})`);
  await until("the next push, answered 410", () => received.length > before, 60000);
  await until("the subscription dropped", async () => {
    const { subscriptions } = await (await fetch(`${url}/api/v1/push/subscriptions`, { headers })).json();
    return subscriptions.length === 0;
  });
} catch (error) {
  failed = true;
  console.error(`Firefox push test failed at "${stage}": ${error.message}`);
  console.error(`push server saw: ${seen.join(", ")}; received ${received.length}; acks ${acks.length}`);
  console.error(driverLog.join("").split("\n").slice(-40).join("\n"));
} finally {
  if (session) await wd("DELETE", `/session/${session}`).catch(() => {});
  driver.kill();
  sockets.close();
  pushHttp.close();
}
process.exit(failed ? 1 : 0);
