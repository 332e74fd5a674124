// A task's artifacts in the companion on a phone-sized screen (Debian's
// chromium driven by playwright-core), against a real server whose task
// failed its test check: the JUnit report shows its failed test first and
// its passed ones folded, the screenshot is previewed from fetched bytes,
// and the HTML report is only a download (its script never runs).
//
// Inputs (environment): PUSHPALS_TASK, and what browser.mjs reads.
import { check, launch, pair, screenshotAll, shots, url } from "./browser.mjs";

const task = process.env.PUSHPALS_TASK;
const browser = await launch();
let failed = false;
let stage = "start";
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy/.test(message.text())) problems.push(message.text());
  });

  stage = "pairing";
  await pair(page);

  stage = "the task's artifacts";
  await page.goto(`${url}/#task/${task}`);
  const cards = page.locator("#task-artifacts .artifact");
  await cards.first().waitFor({ timeout: 15000 });
  check(await cards.count() === 3, `three artifacts are shown (${await cards.count()})`);
  const report = page.locator("#task-artifacts .artifact[data-kind=junit]");
  check((await report.innerText()).includes("3 tests, 1 failed"), "the report's counts are shown");
  const firstListed = await report.locator("li").first().innerText();
  check(firstListed === "suite::crashes", `the failed test comes first (${firstListed})`);
  check(await report.locator("details").getAttribute("open") === null, "the passed tests are folded");
  const image = page.locator("#task-artifacts .artifact-image");
  await page.waitForFunction(() => {
    const img = document.querySelector("#task-artifacts .artifact-image");
    return img && img.complete && img.naturalWidth === 4;
  }, null, { timeout: 10000 });
  check((await image.getAttribute("src")).startsWith("blob:"), "the image comes from fetched bytes, not a URL with a token");
  const html = page.locator("#task-artifacts .artifact[data-kind=html]");
  check(await html.locator("iframe, img, object, embed").count() === 0, "the HTML report is not rendered");
  const [download] = await Promise.all([page.waitForEvent("download"), html.locator("button.download").click()]);
  check(download.suggestedFilename() === "index.html", `the HTML report downloads (${download.suggestedFilename()})`);
  const box = await html.locator("button.download").boundingBox();
  check(box.height >= 44, `the download button is a thumb's target (${box.height}px)`);
  await page.screenshot({ path: `${shots}/artifacts-390x844.png`, fullPage: true });

  check(await page.evaluate(() => window.__xss) === undefined, "a script ran from an artifact");
  check(problems.length === 0, problems.join("; "));
} catch (error) {
  failed = true;
  console.error(`the artifacts browser test failed while ${stage}:`, error);
  await screenshotAll(browser, "artifacts-failure.png");
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
