// Details a person decides on, on a phone screen (Debian's chromium
// driven by playwright-core) against a real server: terminal colours in
// output shown as styles, never as raw codes; times in the device's zone,
// named; Cancel asks once more in the page; a task started from the
// phone's form (an empty title refused, nothing made); a read-only device
// sees no control it cannot use.
//
// Inputs (environment): PUSHPALS_READ_CODE (a read-scope pairing code),
// PUSHPALS_COLOURED (a task awaiting approval whose output has colours),
// PUSHPALS_RUNNING (a running task), and what browser.mjs reads.
import { check, code, launch, screenshotAll, shots, url } from "./browser.mjs";

const { PUSHPALS_READ_CODE: readCode, PUSHPALS_COLOURED: coloured, PUSHPALS_RUNNING: running } = process.env;
const browser = await launch();
let failed = false;
let stage = "start";

async function paired(pairingCode, device) {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  page.on("dialog", async (dialog) => { await dialog.dismiss(); throw new Error(`a browser dialog opened: ${dialog.message()}`); });
  await page.goto(`${url}/#pair=${pairingCode}`);
  await page.fill("#pair-device", device);
  await page.click("button[type=submit]");
  await page.waitForSelector("#chat-input");
  return page;
}

try {
  stage = "colours and times";
  const page = await paired(code, "approver");
  await page.goto(`${url}/#task/${coloured}`);
  const output = page.locator("#timeline li[data-kind=output]", { hasText: "plain" }).first();
  await output.waitFor({ timeout: 15000 });
  const red = await output.locator("span.ansi-fg-31").innerText();
  check(red === "red", `the red part is styled (${red})`);
  const text = await output.innerText();
  check(!text.includes("[31m") && !text.includes("\u001b") && !text.includes("u{001B}"), `no raw codes show: ${JSON.stringify(text)}`);
  const time = await page.locator("#timeline time").first().innerText();
  check(/\d\d:\d\d:\d\d\s+\S+/.test(time), `the time names its zone (${time})`);
  await page.screenshot({ path: `${shots}/colours-390x844.png`, fullPage: true });

  stage = "cancel asks once more";
  await page.goto(`${url}/#task/${running}`);
  await page.locator("#task-actions #cancel").click();
  await page.locator("#cancel-confirm").waitFor();
  await page.locator("#cancel-no").click();
  await page.locator("#task-actions #cancel").waitFor();
  const still = await page.evaluate((id) => fetch(`/api/v1/tasks/${id}`, { headers: { Authorization: `Bearer ${localStorage.getItem("pushpals.token")}` } }).then((r) => r.json()), running);
  check(still.task.state === "running", `keeping it leaves it running (${still.task.state})`);
  await page.locator("#task-actions #cancel").click();
  await page.locator("#cancel-yes").click();
  await page.locator(".state.cancelled").waitFor({ timeout: 15000 });

  stage = "running a cancelled task again";
  await page.locator("#continue-run").click();
  await page.locator("#task-actions #cancel").waitFor({ timeout: 15000 });
  const again = await page.evaluate((id) => fetch(`/api/v1/tasks/${id}`, { headers: { Authorization: `Bearer ${localStorage.getItem("pushpals.token")}` } }).then((r) => r.json()), running);
  check(["queued", "preparing", "running"].includes(again.task.state), `the task runs again (${again.task.state})`);
  await page.locator("#task-actions #cancel").click();
  await page.locator("#cancel-yes").click();
  await page.locator(".state.cancelled").waitFor({ timeout: 15000 });

  stage = "starting work from the phone";
  const tasks = () => page.evaluate(() => fetch("/api/v1/tasks", { headers: { Authorization: `Bearer ${localStorage.getItem("pushpals.token")}` } }).then((r) => r.json()).then((b) => b.tasks.length));
  await page.click("nav a[data-view=board]");
  await page.locator("#new-open").click();
  check(await page.locator("#new-kind option[value=agent]").count() === 0, "no agent task is offered without a model");
  const before = await tasks();
  await page.fill("#new-command", "echo phone > phone.txt");
  await page.click("#new-submit");
  await page.locator("#error").waitFor({ state: "visible", timeout: 5000 });
  check(await tasks() === before, "an empty title creates nothing");
  await page.fill("#new-title", "From the phone");
  await page.click("#new-submit");
  await page.waitForURL(/#task\//, { timeout: 10000 });
  await page.locator("h1", { hasText: "From the phone" }).waitFor({ timeout: 10000 });
  check(await tasks() === before + 1, "the task was created once");
  await page.screenshot({ path: `${shots}/new-task-390x844.png`, fullPage: true });

  stage = "a read-only device";
  const reader = await paired(readCode, "reader");
  await reader.goto(`${url}/#task/${coloured}`);
  await reader.locator("#task-actions").getByText("may only read").waitFor({ timeout: 15000 });
  check(await reader.locator("#approve, #deny, #cancel").count() === 0, "no approve, deny or cancel for a read-only device");
  await reader.click("nav a[data-view=board]");
  await reader.locator("#board a").first().waitFor({ timeout: 15000 });
  check(await reader.locator("#new-open").count() === 0, "a read-only device is offered no new task");
  await reader.click("nav a[data-view=approvals]");
  await reader.locator("#approvals .read-only").first().waitFor({ timeout: 15000 });
  check(await reader.locator("#approvals button").count() === 0, "no buttons on Approvals for a read-only device");
  await reader.screenshot({ path: `${shots}/read-only-approvals-390x844.png`, fullPage: true });
} catch (error) {
  failed = true;
  console.error(`the trust browser test failed while ${stage}:`, error);
  await screenshotAll(browser, "trust-failure.png");
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
