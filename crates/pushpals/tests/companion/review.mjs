// Reviewing and navigating with thumbs, on a phone screen (Debian's
// chromium driven by playwright-core) against a real server:
// - nothing but pairing before pairing; then a bottom bar with every screen
//   in view, Approvals first with its count, staying put while scrolling;
// - every target at least 44 px tall; theme colours for light and dark;
//   icons for iOS and Android; assets gzipped and revalidated by hash;
// - a diff with a file list and counts that jumps to a file, a large file
//   collapsed, line numbers, colours across the scrolled width, the
//   changed word marked; the approval card names the task, its checks and
//   what the change touches; Deny all asks once more;
// - a 3,000-event timeline opens at its end and pages back to its start;
//   a 5,000-character line is folded until asked;
// - the chat keeps its history on the server (a reload, another tab) and
//   its task references are links.
//
// Inputs (environment): PUSHPALS_REVIEW (a task awaiting approval with a
// diff; two more wait too), PUSHPALS_LONG (task #1, with 3,000 output
// events, one of them 5,000 characters), and what browser.mjs reads.
import { check, code, launch, phonePage, screenshotAll, shoot, url } from "./browser.mjs";

const { PUSHPALS_REVIEW: review, PUSHPALS_LONG: long } = process.env;
const browser = await launch();
let failed = false;
let stage = "start";

/** Elements a thumb taps that are shorter than 44 px, named. */
async function smallTargets(page) {
  return page.evaluate(() => {
    const small = [];
    for (const el of document.querySelectorAll("button, summary, input, select, textarea, nav a, .diff-list a, a.next-file, #board a")) {
      const box = el.getBoundingClientRect();
      if (box.width === 0 || box.height === 0 || el.closest("[hidden]")) continue;
      // A checkbox counts by the label it sits in.
      const target = el.type === "checkbox" && el.closest("label") ? el.closest("label").getBoundingClientRect() : box;
      if (target.height < 44) small.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""} "${(el.innerText || el.value || "").slice(0, 20)}" ${Math.round(target.height)}px`);
    }
    return small;
  });
}

/** Dismisses a finding in the page: a reason is asked for, never by a dialog. */
async function dismissOne(page) {
  const cards = page.locator("#suggestions [data-fingerprint]");
  await cards.first().waitFor({ timeout: 15000 });
  const before = await cards.count();
  const card = cards.first();
  const fingerprint = await card.getAttribute("data-fingerprint");
  await card.locator("button", { hasText: "Dismiss…" }).click();
  await card.locator("button.dismiss-send").click();
  await page.locator("#error", { hasText: "Say why" }).waitFor({ timeout: 5000 });
  check((await cards.count()) === before, "an empty reason dismisses nothing");
  await card.locator("input.dismiss-reason").fill("a fixture, not a secret");
  await card.locator("button.dismiss-send").click();
  await page.locator(`#suggestions [data-fingerprint="${fingerprint}"]`).waitFor({ state: "detached", timeout: 10000 });
  check((await cards.count()) === before - 1, "the finding is dismissed");
}

try {
  const { context, page, problems } = await phonePage(browser);

  stage = "before pairing";
  await page.goto(`${url}/#pair=${code}`);
  await page.waitForSelector("#pair-device");
  check(await page.locator("nav.tabs").isHidden(), "no screens are offered before pairing");
  await shoot(page, "pair-390x844.png");

  stage = "the page's head: theme colours, icons";
  const head = await page.evaluate(() => ({
    themes: [...document.querySelectorAll('meta[name="theme-color"]')].map((m) => `${m.media}=${m.content}`),
    touch: document.querySelector('link[rel="apple-touch-icon"]')?.getAttribute("href"),
  }));
  check(head.themes.some((t) => t.includes("dark")) && head.themes.some((t) => t.includes("light")), `theme-color for both modes: ${head.themes}`);
  const icon = await fetch(`${url}${head.touch}`);
  const iconBytes = new Uint8Array(await icon.arrayBuffer());
  check(icon.ok && icon.headers.get("content-type") === "image/png" && iconBytes[1] === 0x50, `the apple-touch-icon is a PNG (${icon.status})`);
  const manifest = await (await fetch(`${url}/manifest.webmanifest`)).json();
  check(manifest.icons.some((i) => i.sizes === "192x192") && manifest.icons.some((i) => i.sizes === "512x512"), "Android icons of 192 and 512 px");
  const script = await fetch(`${url}/app.js`, { headers: { "accept-encoding": "gzip" } });
  check(script.headers.get("content-encoding") === "gzip", `assets are gzipped (${script.headers.get("content-encoding")})`);
  const again = await fetch(`${url}/app.js`, { headers: { "if-none-match": script.headers.get("etag") } });
  check(again.status === 304, `an unchanged asset is a 304 by its hash (${again.status})`);

  await page.fill("#pair-device", "thumb-phone");
  await page.click("button[type=submit]");
  await page.waitForSelector("#chat-input");

  stage = "the bottom bar";
  const bar = await page.locator("nav.tabs").boundingBox();
  check(bar && Math.round(bar.y + bar.height) === 844, `the bar sits at the bottom (${JSON.stringify(bar)})`);
  const tabs = await page.locator("nav.tabs a").evaluateAll((links) => links.map((a) => {
    const box = a.getBoundingClientRect();
    return { view: a.dataset.view, left: box.left, right: box.right, height: box.height };
  }));
  check(tabs[0].view === "approvals", `Approvals comes first (${tabs[0].view})`);
  check(tabs.every((t) => t.left >= 0 && t.right <= 390 && t.height >= 44), `every screen is in view and tall enough: ${JSON.stringify(tabs)}`);
  await page.locator("#pending-count", { hasText: "3" }).waitFor({ timeout: 15000 });

  stage = "the chat keeps its history and links tasks";
  await page.fill("#chat-input", "how is #1?");
  await page.click("#chat-send");
  await page.locator(".bubble.them a.task-ref").first().waitFor({ timeout: 10000 });
  await page.reload();
  await page.locator(".bubble.me", { hasText: "how is #1?" }).waitFor({ timeout: 10000 });
  const second = await context.newPage();
  await second.goto(`${url}/#chat`);
  await second.locator(".bubble.me", { hasText: "how is #1?" }).waitFor({ timeout: 10000 });
  await second.close();
  await page.locator(".bubble.them a.task-ref").first().click();
  await page.waitForFunction(() => location.hash.startsWith("#task/"));
  await page.locator("#timeline li").first().waitFor({ timeout: 10000 });

  stage = "the approval card";
  await page.click("nav a[data-view=approvals]");
  const card = page.locator("#approvals [data-approval]", { hasText: "Review me" });
  await card.waitFor({ timeout: 15000 });
  const cardText = await card.innerText();
  check(/#\d+ Review me/.test(cardText), `the card names the task: ${cardText}`);
  check(cardText.includes("3 files, +302 −301"), `the card says what the change touches: ${cardText}`);
  check((await smallTargets(page)).length === 0, `small targets on Approvals: ${await smallTargets(page)}`);
  await shoot(page, "approvals-390x844.png");
  await page.click("#deny-all");
  await page.locator("#deny-all-confirm").waitFor();
  await page.click("#deny-all-no");
  await page.waitForTimeout(300);
  check((await page.locator("#approvals [data-approval]").count()) === 3, "Keep them denies nothing");

  stage = "the diff";
  await page.goto(`${url}/#task/${review}`);
  await page.locator("#diff-files").waitFor({ timeout: 15000 });
  const list = await page.locator("#diff-files").innerText();
  check(list.includes("3 files, +302 −301"), `the file list sums up: ${list}`);
  check(/big\.txt\s*\+300\s*−300/.test(list) && /src\/small\.txt\s*\+1\s*−1/.test(list), `each file with its counts: ${list}`);
  const big = page.locator("details.diff-file", { hasText: "big.txt" });
  check(!(await big.evaluate((d) => d.open)), "the large file starts collapsed");
  const small = page.locator("details.diff-file", { hasText: "src/small.txt" });
  check(await small.evaluate((d) => d.open), "a small file starts open");
  const marked = await small.locator("mark.word").allInnerTexts();
  check(marked.includes("beta") && marked.includes("BETA"), `the changed word is marked on both lines: ${marked}`);
  const numbers = await small.locator(".diff-row.add .no").allInnerTexts();
  check(numbers.includes("1"), `added lines are numbered: ${numbers}`);
  await page.locator("#diff-files a", { hasText: "big.txt" }).click();
  check(await big.evaluate((d) => d.open), "tapping a file in the list opens it");
  const top = await big.evaluate((d) => d.getBoundingClientRect().top);
  check(top >= -2 && top < 100, `and brings it into view (${top})`);
  check((await page.evaluate(() => location.hash)) === `#task/${review}`, "the screen stays the task");
  // Colours reach the end of the widest line when scrolled sideways.
  const widths = await small.evaluate((d) => {
    const scroller = d.querySelector(".diff-lines");
    const row = d.querySelector(".diff-row.add");
    return { row: row.getBoundingClientRect().width, content: scroller.scrollWidth };
  });
  check(widths.row >= widths.content - 1, `a coloured row spans the scrolled width: ${JSON.stringify(widths)}`);
  check((await smallTargets(page)).length === 0, `small targets on a task: ${await smallTargets(page)}`);
  await shoot(page, "diff-390x844.png");

  stage = "a 3,000-event timeline";
  await page.goto(`${url}/#task/${long}`);
  await page.locator("#timeline li", { hasText: "line 2999" }).waitFor({ timeout: 15000 });
  for (let i = 0; i < 10 && (await page.locator("#timeline-earlier").isVisible()); i++) {
    await page.click("#timeline-earlier");
    await page.waitForTimeout(200);
  }
  const items = await page.locator("#timeline li").count();
  check(items === 3002, `every event is shown once, from the start (${items})`);
  check((await page.locator("#timeline li").first().getAttribute("data-kind")) === "task_created", "the first is the task's creation");
  const folded = page.locator("#timeline li[data-kind=output]", { hasText: "yyyy" });
  const before = (await folded.innerText()).length;
  check(before < 2000, `the 5,000-character line is folded (${before})`);
  await folded.locator("button.unfold").click();
  const after = (await folded.locator("pre").innerText()).length;
  check(after >= 5000, `and shown whole when asked (${after})`);
  await page.click("#timeline-end");
  await page.waitForTimeout(200);
  const lastVisible = await page.locator("#timeline li").last().evaluate((li) => li.getBoundingClientRect().bottom <= window.innerHeight + 1);
  check(lastVisible, "Jump to the end shows the last event");
  check(problems.length === 0, problems.join("; "));
  await shoot(page, "timeline-390x844.png");

  stage = "every screen's targets";
  for (const [view, ready] of [["board", "#board"], ["chat", "#chat-input"], ["suggestions", "#scan-now"], ["audit", "#audit-events li"], ["settings", "#push-toggle, .grant"]]) {
    await page.click(`nav a[data-view=${view}]`);
    await page.locator(ready).first().waitFor({ timeout: 15000 });
    await page.waitForTimeout(300);
    const small = await smallTargets(page);
    check(small.length === 0, `small targets on ${view}: ${small.join("; ")}`);
    if (view === "suggestions") await dismissOne(page);
    if (view === "board" || view === "chat") await shoot(page, `${view}-thumbs-390x844.png`);
  }

  stage = "dark mode";
  const dark = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  const darkPage = await dark.newPage();
  const token = await page.evaluate(() => localStorage.getItem("pushpals.token"));
  await darkPage.addInitScript((t) => localStorage.setItem("pushpals.token", t), token);
  await darkPage.goto(`${url}/#task/${review}`);
  await darkPage.locator("#diff-files").waitFor({ timeout: 15000 });
  await shoot(darkPage, "diff-dark-390x844.png");
} catch (error) {
  failed = true;
  console.error(`review test failed at "${stage}": ${error.message}`);
  await screenshotAll(browser, `review-failure.png`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
