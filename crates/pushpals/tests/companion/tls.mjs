// The companion over TLS on a name that is not loopback's: Chromium maps
// the test name to the server with its host resolver rules and trusts the
// private CA from `pushpals tls init` through a temporary NSS certificate
// database (HOME is a scratch directory). The page must be a secure
// context: pairing works, the service worker registers, and Chromium
// accepts the app manifest. A Web Push subscription needs Chromium's push
// service, which cannot be reached offline: the attempt is reported, not
// required.
//
// Inputs (environment): PUSHPALS_URL (https://<name>:<port>), PUSHPALS_CODE,
// PUSHPALS_HOST_RULES, PUSHPALS_NODE_MODULES, HOME.
import { createRequire } from "node:module";

const require = createRequire(`${process.env.PUSHPALS_NODE_MODULES}/`);
const { chromium } = require("playwright-core");

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const url = process.env.PUSHPALS_URL;
const browser = await chromium.launch({
  executablePath: process.env.PUSHPALS_CHROMIUM || "/usr/bin/chromium",
  env: { ...process.env, HOME: process.env.HOME },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    `--host-resolver-rules=${process.env.PUSHPALS_HOST_RULES}`],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  await context.grantPermissions(["notifications"], { origin: url });
  const page = await context.newPage();
  // A certificate the browser does not trust makes this throw.
  await page.goto(`${url}/#pair=${process.env.PUSHPALS_CODE}`);
  check(await page.evaluate(() => window.isSecureContext), "the page is a secure context");
  await page.fill("#pair-device", "tls-phone");
  await page.click("button[type=submit]");
  await page.waitForSelector("#chat-input");
  const worker = await page.evaluate(() => navigator.serviceWorker.ready.then((r) => Boolean(r.active)));
  check(worker === true, "the service worker registers over TLS");
  const cdp = await context.newCDPSession(page);
  const manifest = await cdp.send("Page.getAppManifest", {});
  check(manifest.url.endsWith("/manifest.webmanifest"), `the manifest is linked: ${manifest.url}`);
  check(manifest.errors.length === 0, `Chromium accepts the manifest: ${JSON.stringify(manifest.errors)}`);
  const push = await page.evaluate(async () => {
    try {
      const registration = await navigator.serviceWorker.ready;
      const key = await fetch("/api/v1/push/key", {
        headers: { authorization: `Bearer ${localStorage.getItem("pushpals.token")}` },
      }).then((r) => r.json());
      const padded = key.public_key.replace(/-/g, "+").replace(/_/g, "/");
      const raw = Uint8Array.from(atob(padded + "=".repeat((4 - (padded.length % 4)) % 4)), (c) => c.charCodeAt(0));
      await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: raw });
      return "subscribed";
    } catch (error) {
      return `not subscribed: ${error.name}: ${error.message}`;
    }
  });
  console.log(`push: ${push}`);
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
