// Two repositories on one server, on a phone screen (Debian's chromium
// driven by playwright-core): the board's switcher shows one repository's
// tasks or all of them, remembers the choice across a reload, and a task
// started from the phone goes to the repository chosen.
//
// Inputs (environment): PUSHPALS_FIRST and PUSHPALS_SECOND (the two
// repositories' names), and what browser.mjs reads.
import { check, launch, pair, phonePage, screenshotAll, shoot } from "./browser.mjs";

const { PUSHPALS_FIRST: first, PUSHPALS_SECOND: second } = process.env;
const browser = await launch();
let failed = false;
let stage = "start";
const cards = (page) => page.locator("#board a.card strong").allInnerTexts();

try {
  const { page, problems } = await phonePage(browser);
  await pair(page, "two-repos");

  stage = "the board across all repositories";
  await page.click("nav a[data-view=board]");
  await page.locator("#board a.card").nth(1).waitFor({ timeout: 15000 });
  const options = await page.locator("#repo-switch option").allInnerTexts();
  check(JSON.stringify(options) === JSON.stringify(["All repositories", first, second].sort((a, b) => (a === "All repositories" ? -1 : b === "All repositories" ? 1 : a.localeCompare(b)))),
    `the switcher offers all and each repository (${options})`);
  const all = await cards(page);
  check(all.some((t) => t.includes(`In ${first}`)) && all.some((t) => t.includes(`In ${second}`)), `both tasks show (${all})`);
  const meta = await page.locator("#board a.card .muted").first().innerText();
  check(meta.includes(first) || meta.includes(second), `a card names its repository (${meta})`);

  stage = "one repository's board";
  await page.selectOption("#repo-switch", second);
  await page.waitForFunction((name) => [...document.querySelectorAll("#board a.card strong")].every((n) => n.textContent.includes(`In ${name}`)), second, { timeout: 10000 });
  check((await cards(page)).length === 1, "only the chosen repository's task shows");

  stage = "the choice survives a reload";
  await page.reload();
  await page.click("nav a[data-view=board]");
  await page.locator("#board a.card").first().waitFor({ timeout: 15000 });
  check(await page.locator("#repo-switch").inputValue() === second, "the switcher still shows the chosen repository");
  check((await cards(page)).length === 1, "still one repository's tasks");
  await shoot(page, "board-one-repository-390x844.png");

  stage = "a new task goes to the chosen repository";
  await page.locator("#new-open").click();
  check(await page.locator("#new-repo").isVisible(), "the form asks which repository");
  check(await page.locator("#new-repo").inputValue() === second, "the board's choice is preselected");
  await page.fill("#new-title", "From the phone");
  await page.fill("#new-command", "true");
  await page.click("#new-submit");
  await page.waitForURL(/#task\//, { timeout: 10000 });
  const created = await page.evaluate(() => fetch("/api/v1/tasks", { headers: { Authorization: `Bearer ${localStorage.getItem("pushpals.token")}` } }).then((r) => r.json()));
  const mine = created.tasks.filter((t) => t.title === "From the phone");
  check(mine.length === 1 && mine[0].repo === second, `created once, in ${second} (${JSON.stringify(mine.map((t) => t.repo))})`);

  stage = "back to all";
  await page.click("nav a[data-view=board]");
  await page.selectOption("#repo-switch", "");
  await page.locator("#board a.card").nth(2).waitFor({ timeout: 15000 });
  check((await cards(page)).length === 3, "all three tasks show again");
  check(problems.length === 0, `no page errors or dialogs (${problems})`);
} catch (error) {
  failed = true;
  console.error(`the repositories browser test failed while ${stage}:`, error);
  await screenshotAll(browser, "repos-failure.png");
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
