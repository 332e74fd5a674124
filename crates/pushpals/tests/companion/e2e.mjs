// The companion in a real browser (Debian's chromium driven by
// playwright-core), against a real server the Rust test started:
// pair with a code, ask for work in the chat box, watch the output arrive
// live, read the diff, approve; then deny another task with a reason. Any
// script run from task output or a diff fails the test.
//
// Inputs (environment): as browser.mjs reads them.
import { check, code, launch, screenshotAll, shots, url } from "./browser.mjs";

const browser = await launch();
let failed = false;
let stage = "start";
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const problems = [];
  page.on("dialog", async (dialog) => { problems.push(`a dialog opened: ${dialog.message()}`); await dialog.dismiss(); });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

  stage = "pairing";
  await page.goto(`${url}/#pair=${code}`);
  check(await page.locator("#pair-code").inputValue() === code, "the code is taken from the link");
  await page.fill("#pair-device", "test-phone");
  await page.click("button[type=submit]");
  await page.waitForSelector("#chat-input");
  check(!page.url().includes("pair="), "the code leaves the address bar after pairing");
  const stored = await page.evaluate(() => localStorage.getItem("pushpals.token"));
  check(stored && stored.startsWith("pp_"), "the device token is stored");
  await page.locator("#live.on").waitFor({ timeout: 15000 });
  const worker = await page.evaluate(() => navigator.serviceWorker.ready.then((r) => Boolean(r.active)));
  check(worker === true, "the service worker registers (installable app shell)");
  const manifest = await page.evaluate(() => fetch("/manifest.webmanifest").then((r) => r.json()));
  check(manifest.display === "standalone" && manifest.icons.length > 0, "the app manifest is served");

  stage = "asking in chat, waiting for the plan";
  await page.fill("#chat-input", "add a greeting file");
  await page.click("#chat-send");
  await page.locator(".bubble.them", { hasText: "On it: planning" }).waitFor();
  await page.locator(".bubble.them", { hasText: "Plan ready" }).waitFor({ timeout: 30000 });
  await page.screenshot({ path: `${shots}/chat-390x844.png`, fullPage: true });

  stage = "the first task: board, live output, diff, approve";
  await page.click("nav a[data-view=board]");
  const card = page.locator("#board a", { hasText: "Add greeting" });
  await card.waitFor();
  await card.click();
  await page.locator("#timeline", { hasText: "step-two" }).waitFor({ timeout: 30000 });
  await page.locator("#task-actions #approve").waitFor({ timeout: 30000 });
  const timeline = await page.locator("#timeline").innerText();
  check(timeline.indexOf("step-one") < timeline.indexOf("step-two"), "output arrives in order");
  check(timeline.includes('<img src=x onerror="window.__xss=1">'), "command output shows as text");
  await page.locator("#task-diff", { hasText: "greeting.txt" }).waitFor({ timeout: 10000 });
  const diff = await page.locator("#task-diff").innerText();
  check(diff.includes("+<script>window.__xss=2</script>"), "the diff shows markup as text");
  check(await page.locator(".approval-summary").count() === 1, "what approving does is shown");
  const message = await page.locator("#commit-message pre").textContent();
  check(message.startsWith("Add greeting") && message.includes("Added greeting.txt."), `the proposed commit message: ${message}`);
  await page.screenshot({ path: `${shots}/task-390x844.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: `${shots}/task-1280x800.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("#approve");
  await page.locator(".state.committed").waitFor({ timeout: 30000 });

  stage = "the second task: deny with a reason";
  await page.click("nav a[data-view=chat]");
  await page.fill("#chat-input", "add a farewell file");
  await page.click("#chat-send");
  await page.click("nav a[data-view=board]");
  const second = page.locator("#board a", { hasText: "Add farewell" });
  await second.waitFor({ timeout: 30000 });
  await second.click();
  await page.locator("#task-actions #deny").waitFor({ timeout: 30000 });
  await page.fill("#deny-reason", "not like this");
  await page.click("#deny");
  await page.locator(".state.rejected").waitFor({ timeout: 30000 });
  await page.locator("#timeline", { hasText: "not like this" }).waitFor({ timeout: 10000 });

  stage = "suggestions";
  await page.click("nav a[data-view=suggestions]");
  await page.click("#scan-now");
  await page.locator("#scan-status", { hasText: "Scanned" }).waitFor({ timeout: 30000 });
  await page.locator("#suggestions section[data-kind=docs]").waitFor();
  await page.screenshot({ path: `${shots}/suggestions-390x844.png`, fullPage: true });

  stage = "approvals, audit, settings";
  await page.click("nav a[data-view=approvals]");
  await page.locator("#approvals", { hasText: "Nothing waits for you" }).waitFor();
  await page.click("nav a[data-view=audit]");
  await page.locator("#audit-verdict", { hasText: "The chain verifies" }).waitFor();
  await page.selectOption("#audit-kind", "approval_decided");
  await page.waitForFunction(() => {
    const items = [...document.querySelectorAll("#audit-events li")];
    return items.length > 0 && items.every((li) => li.innerText.includes("approval_decided"));
  });
  const decided = await page.locator("#audit-events li").count();
  check(decided === 2, `two decisions in the audit log, saw ${decided}`);
  await page.screenshot({ path: `${shots}/audit-390x844.png`, fullPage: true });
  await page.click("nav a[data-view=settings]");
  await page.locator("#devices", { hasText: "admin" }).or(page.locator("#devices", { hasText: "needs the admin token" })).waitFor();
  await page.locator("#policy", { hasText: "rules in force" }).waitFor();
  check(await page.locator("#grant-auto-commit").isChecked() === false, "nothing is granted by default");
  await page.screenshot({ path: `${shots}/settings-390x844.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.click("nav a[data-view=board]");
  await page.locator("#board a").first().waitFor();
  await page.screenshot({ path: `${shots}/board-1280x800.png`, fullPage: true });

  stage = "an approval that tries to spoof its command";
  await page.setViewportSize({ width: 390, height: 844 });
  const created = await page.evaluate(() => fetch("/api/v1/tasks", {
    method: "POST",
    headers: {
      Authorization: `Bearer ${localStorage.getItem("pushpals.token")}`,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({ title: "Clean \u202Epu", command: "frobnicate cleanup.py \u202Enur-yrd--\u202C" }),
  }).then((r) => r.status));
  check(created === 201, `the spoofing task was created (${created})`);
  await page.click("nav a[data-view=approvals]");
  const spoofed = page.locator("#approvals .card", { hasText: "frobnicate" });
  await spoofed.waitFor({ timeout: 30000 });
  const shown = await spoofed.innerText();
  check(!shown.includes("\u202E"), `a bidirectional override acts on the approval card: ${shown}`);
  check(shown.includes("\\u{202E}nur-yrd--\\u{202C}"), `the override is shown escaped: ${shown}`);
  await page.screenshot({ path: `${shots}/spoofed-approval-390x844.png`, fullPage: true });

  const xss = await page.evaluate(() => window.__xss);
  check(xss === undefined, `a script ran from task content (${xss})`);
  check(await page.locator("main img").count() === 0, "no image element was made from task content");
  check(problems.length === 0, problems.join("; "));
} catch (error) {
  failed = true;
  console.error(`the companion test failed while ${stage}:`, error);
  await screenshotAll(browser, "failure.png");
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
