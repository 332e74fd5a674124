// What the companion's browser tests share: Debian's chromium through
// playwright-core (from PUSHPALS_NODE_MODULES), a check that fails the
// test with its message, pairing a device with a code, and a screenshot
// of every page when a test fails.
import { createRequire } from "node:module";
import { mkdirSync, readFileSync } from "node:fs";

const require = createRequire(`${process.env.PUSHPALS_NODE_MODULES}/`);
const { chromium } = require("playwright-core");

/** The server, pairing code and screenshot folder the Rust side gives. */
export const url = process.env.PUSHPALS_URL;
export const code = process.env.PUSHPALS_CODE;
export const shots = process.env.PUSHPALS_SHOTS;
mkdirSync(shots, { recursive: true });

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Headless chromium with nothing reaching out on its own. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.PUSHPALS_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * A page on a phone-sized screen (390×844); its page errors and any browser
 * dialog (none should open) are collected in `problems`.
 */
export async function phonePage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("dialog", async (dialog) => { problems.push(`a dialog opened: ${dialog.message()}`); await dialog.dismiss(); });
  return { context, page, problems };
}

/** Pairs the page with the code as a device named `device`. */
export async function pair(page, device = "test-phone") {
  await page.goto(`${url}/#pair=${code}`);
  await page.fill("#pair-device", device);
  await page.click("button[type=submit]");
  await page.waitForSelector("#chat-input");
}

/** A full-page screenshot of every open page, named `name`. */
export async function screenshotAll(browser, name) {
  for (const context of browser.contexts()) {
    for (const page of context.pages()) {
      await page.screenshot({ path: `${shots}/${name}`, fullPage: true }).catch(() => {});
    }
  }
}

/**
 * A screenshot of `page` as `name`, checked by its size (not by eye): a
 * PNG as wide as the viewport, with more in it than a blank screen.
 */
export async function shoot(page, name, options = {}) {
  const path = `${shots}/${name}`;
  await page.screenshot({ path, ...options });
  const png = readFileSync(path);
  const width = png.readUInt32BE(16);
  const expected = page.viewportSize().width;
  check(png.subarray(1, 4).toString() === "PNG" && width === expected, `${name} is a PNG ${expected} px wide (${width})`);
  check(png.length > 8 * 1024, `${name} shows something (${png.length} bytes)`);
}
