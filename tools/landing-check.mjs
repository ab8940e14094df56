// Drives the landing page in headless Chromium (Debian's, through
// playwright-core) the way a GIS administrator would, and prints what it
// saw as JSON for the Go test that started the proxy.
//
//   node tools/landing-check.mjs <page url> <client id> <secret> <wrong secret> <screenshot dir>
import { chromium } from "playwright-core";

const [url, id, secret, wrongSecret, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const result = { consoleErrors: [] };
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 1000 },
    permissions: ["clipboard-read", "clipboard-write"],
  });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") result.consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => result.consoleErrors.push(String(e)));
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));

  await page.goto(url);
  result.title = await page.title();
  result.footer = (await page.textContent("footer")).trim();
  result.checkDisabledBefore = await page.isDisabled("#check");

  // Labels are wired to their fields: fill them by their visible names.
  await page.getByLabel("Client ID", { exact: true }).fill(id);
  await page.getByLabel("Client secret", { exact: true }).fill(secret);
  result.wmts = await page.inputValue("#wmts-url");
  result.wms = await page.inputValue("#wms-url");
  result.requestsBeforeCheck = requests.filter((u) => u !== url).length;

  // The copy buttons put each address on the clipboard.
  await page.click('button.copy[data-target="wmts-url"]');
  result.copiedWmts = await page.evaluate(() => navigator.clipboard.readText());
  result.copyLabel = (await page.textContent('button.copy[data-target="wmts-url"]')).trim();
  await page.click('button.copy[data-target="wms-url"]');
  result.copiedWms = await page.evaluate(() => navigator.clipboard.readText());

  await page.click("#check");
  await page.waitForSelector("#status.ok, #status.err", { timeout: 15000 });
  result.okClass = await page.getAttribute("#status", "class");
  result.okText = (await page.textContent("#status")).trim();
  await page.screenshot({ path: `${shots}/landing-ok.png`, fullPage: true });

  // Wrong credentials, by keyboard only: Enter in the secret field checks.
  await page.getByLabel("Client secret", { exact: true }).fill(wrongSecret);
  await page.focus("#client-secret");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#status.err", { timeout: 15000 });
  result.badText = (await page.textContent("#status")).trim();
  await page.screenshot({ path: `${shots}/landing-refused.png`, fullPage: true });

  // A phone-sized screen: nothing may overflow sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  result.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  await page.screenshot({ path: `${shots}/landing-phone.png`, fullPage: true });
} catch (e) {
  result.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
