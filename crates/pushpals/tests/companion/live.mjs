// Live views that stay true, and approvals that happen once, on a phone
// screen (Debian's chromium driven by playwright-core) against a real
// server: the board shows a new task within a second while another task
// streams output; a reason being typed survives another approval
// arriving; a double tap approves once and shows no error; with the live
// stream cut, Approvals reads again when the app returns to the foreground
// and when the stream is back.
//
// Inputs (environment): as browser.mjs reads them.
import { check, launch, pair, phonePage, screenshotAll, shots, url } from "./browser.mjs";

const browser = await launch();
let failed = false;
let stage = "start";
try {
  const { page, problems } = await phonePage(browser);

  stage = "pairing";
  await pair(page);
  await page.locator("#live.on").waitFor({ timeout: 15000 });
  const token = await page.evaluate(() => localStorage.getItem("pushpals.token"));
  const create = async (title, command) => {
    const response = await fetch(`${url}/api/v1/tasks`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ title, command }),
    });
    check(response.status === 201, `${title} was created (${response.status})`);
    return (await response.json()).id;
  };
  const taskState = async (id) => {
    const response = await fetch(`${url}/api/v1/tasks/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    return response.json();
  };

  stage = "the board while a task streams output";
  await page.click("nav a[data-view=board]");
  await create("Stream", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40; do echo line $i; sleep 0.2; done");
  await page.locator("#board a", { hasText: "Stream" }).waitFor({ timeout: 10000 });
  await page.waitForTimeout(1500); // the stream is flowing
  const created = Date.now();
  await create("Second", "echo two > two.txt");
  await page.locator("#board a", { hasText: "Second" }).waitFor({ timeout: 5000 });
  const took = Date.now() - created;
  check(took < 1000, `the new task appeared ${took} ms after it was created, while another streamed`);
  await page.screenshot({ path: `${shots}/board-streaming-390x844.png`, fullPage: true });

  stage = "a typed reason survives another approval arriving";
  const first = await create("First approval", "echo one > one.txt");
  await page.click("nav a[data-view=approvals]");
  const firstCard = page.locator(`#approvals [data-approval]`, { hasText: "First approval" });
  await firstCard.waitFor({ timeout: 30000 });
  await firstCard.locator("input").fill("not this way");
  await create("Another approval", "echo three > three.txt");
  await page.locator(`#approvals [data-approval]`, { hasText: "Another approval" }).waitFor({ timeout: 30000 });
  const kept = await page.locator(`#approvals [data-approval]`, { hasText: "First approval" }).locator("input").inputValue();
  check(kept === "not this way", `the typed reason was kept (${JSON.stringify(kept)})`);

  stage = "a double tap approves once";
  await page.locator(`#approvals [data-approval]`, { hasText: "First approval" }).locator("button.approve").dblclick();
  for (let i = 0; i < 100; i++) {
    const view = await taskState(first);
    if (view.task.state === "committed") break;
    await page.waitForTimeout(100);
  }
  const view = await taskState(first);
  check(view.task.state === "committed", `the task was committed (${view.task.state})`);
  const decided = view.approvals.filter((a) => a.state !== "pending");
  check(decided.length === 1, `one approval was decided (${decided.length})`);
  await page.waitForTimeout(500);
  check(await page.locator("#error").isHidden(), `no error was shown: ${await page.locator("#error").innerText()}`);

  const awaiting = async (id) => {
    for (let i = 0; i < 300; i++) {
      if ((await taskState(id)).task.state === "awaiting_approval") return;
      await page.waitForTimeout(100);
    }
    throw new Error(`task ${id} never waited for approval`);
  };

  stage = "back in the foreground, Approvals reads again";
  // The live stream cut off: only a refetch can show what arrives now.
  await page.route("**/api/v1/events", (route) => route.abort());
  await page.reload();
  await page.locator("#approvals").waitFor();
  await page.locator("#live:not(.on)").waitFor({ timeout: 15000 });
  await awaiting(await create("While away", "echo four > four.txt"));
  await page.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
  await page.locator(`#approvals [data-approval]`, { hasText: "While away" }).waitFor({ timeout: 10000 });

  stage = "back online, Approvals reads again";
  await awaiting(await create("Meanwhile", "echo five > five.txt"));
  await page.unroute("**/api/v1/events");
  await page.locator("#live.on").waitFor({ timeout: 20000 });
  await page.locator(`#approvals [data-approval]`, { hasText: "Meanwhile" }).waitFor({ timeout: 10000 });
  await page.screenshot({ path: `${shots}/approvals-after-offline-390x844.png`, fullPage: true });

  check(problems.length === 0, problems.join("; "));
} catch (error) {
  failed = true;
  console.error(`the live-views browser test failed while ${stage}:`, error);
  await screenshotAll(browser, "live-failure.png");
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
