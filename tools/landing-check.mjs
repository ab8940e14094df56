// Drives the landing page and an API key's about page in headless
// Chromium (Debian's, through playwright-core) the way a GIS administrator
// would, and prints what it saw as JSON for the Go test that started the
// proxy.
//
//   node tools/landing-check.mjs '<json>'
//
// with {url, id, secret, wrongSecret, key, revokedKey, unknownKey, aboutUrl, shots}.
import { launch } from "./chromium.mjs";

const cfg = JSON.parse(process.argv[2]);
const shots = cfg.shots;
const browser = await launch();
const result = { consoleErrors: [] };

// checkAndPreview presses Check and waits for the status, then (when it
// is OK) for every preview tile to finish loading or fail.
async function checkAndPreview(page, trigger) {
  await trigger();
  await page.waitForSelector("#status.ok, #status.err", { timeout: 15000 });
  const r = { class: await page.getAttribute("#status", "class"), text: (await page.textContent("#status")).trim() };
  if (r.class === "ok") {
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll("#tiles img")];
      return imgs.length > 0 && imgs.every((i) => i.complete);
    }, null, { timeout: 15000 });
    r.tiles = await page.$$eval("#tiles img", (imgs) => imgs.map((i) => ({ src: i.src, naturalWidth: i.naturalWidth })));
    r.caption = (await page.textContent("#preview-caption")).trim();
  }
  return r;
}

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

  await page.goto(cfg.url);
  result.title = await page.title();
  result.footer = (await page.textContent("footer")).trim();
  result.checkDisabledBefore = await page.isDisabled("#check");

  // The two ways in are a radio group that the keyboard operates: arrow
  // keys move the choice, and the key field appears in place of the others.
  await page.focus("#mode-credentials");
  await page.keyboard.press("ArrowDown");
  result.keyboardToKey = await page.isChecked("#mode-key") && await page.isVisible("#api-key") && !(await page.isVisible("#client-id"));
  await page.keyboard.press("ArrowUp");
  result.keyboardBack = await page.isChecked("#mode-credentials") && await page.isVisible("#client-id") && !(await page.isVisible("#api-key"));

  // Labels are wired to their fields: fill them by their visible names.
  await page.getByLabel("Client ID", { exact: true }).fill(cfg.id);
  await page.getByLabel("Client secret", { exact: true }).fill(cfg.secret);
  result.wmts = await page.inputValue("#wmts-url");
  result.wms = await page.inputValue("#wms-url");
  result.requestsBeforeCheck = requests.filter((u) => u !== cfg.url).length;

  // The copy buttons put each address on the clipboard.
  await page.click('button.copy[data-target="wmts-url"]');
  result.copiedWmts = await page.evaluate(() => navigator.clipboard.readText());
  result.copyLabel = (await page.textContent('button.copy[data-target="wmts-url"]')).trim();
  await page.click('button.copy[data-target="wms-url"]');
  result.copiedWms = await page.evaluate(() => navigator.clipboard.readText());

  result.ok = await checkAndPreview(page, () => page.click("#check"));
  await page.screenshot({ path: `${shots}/landing-ok.png`, fullPage: true });

  // Wrong credentials, by keyboard only: Enter in the secret field checks.
  await page.getByLabel("Client secret", { exact: true }).fill(cfg.wrongSecret);
  result.previewHiddenAfterEdit = await page.isHidden("#preview");
  result.bad = await checkAndPreview(page, async () => {
    await page.focus("#client-secret");
    await page.keyboard.press("Enter");
  });
  await page.screenshot({ path: `${shots}/landing-refused.png`, fullPage: true });

  // The API key path: choose it by its label, type a key.
  await page.getByLabel("I have an API key").check();
  const before = requests.length;
  await page.getByLabel("API key", { exact: true }).fill("not a key!");
  result.badKeyError = await page.isVisible("#key-error");
  result.badKeyCheckDisabled = await page.isDisabled("#check");
  await page.getByLabel("API key", { exact: true }).fill(cfg.key);
  result.keyErrorAfter = await page.isVisible("#key-error");
  result.keyWmts = await page.inputValue("#wmts-url");
  result.keyWms = await page.inputValue("#wms-url");
  result.requestsBeforeKeyCheck = requests.length - before;
  await page.click('button.copy[data-target="wmts-url"]');
  result.copiedKeyWmts = await page.evaluate(() => navigator.clipboard.readText());
  result.keyOk = await checkAndPreview(page, () => page.click("#check"));
  await page.screenshot({ path: `${shots}/landing-key.png`, fullPage: true });

  result.revoked = await checkAndPreview(page, async () => {
    await page.getByLabel("API key", { exact: true }).fill(cfg.revokedKey);
    await page.keyboard.press("Enter");
  });
  result.unknown = await checkAndPreview(page, async () => {
    await page.getByLabel("API key", { exact: true }).fill(cfg.unknownKey);
    await page.click("#check");
  });
  await page.screenshot({ path: `${shots}/landing-key-refused.png`, fullPage: true });

  // A phone-sized screen: nothing may overflow sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  result.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  await page.screenshot({ path: `${shots}/landing-phone.png`, fullPage: true });

  // The key's about page, as a browser asks for it (Accept: text/html).
  const about = await context.newPage();
  about.on("console", (m) => { if (m.type() === "error") result.consoleErrors.push("about: " + m.text()); });
  about.on("pageerror", (e) => result.consoleErrors.push("about: " + String(e)));
  const resp = await about.goto(cfg.aboutUrl);
  result.about = {
    status: resp.status(),
    contentType: resp.headers()["content-type"] || "",
    csp: resp.headers()["content-security-policy"] || "",
    title: await about.title(),
    h1: (await about.textContent("h1", { timeout: 2000 }).catch(() => "")) || "",
    keyStatus: (await about.textContent("#status", { timeout: 2000 }).catch(() => "")) || "",
    wmts: await about.inputValue("#wmts-url", { timeout: 2000 }).catch(() => ""),
    text: await about.evaluate(() => document.body.innerText),
  };
  if (result.about.wmts) {
    await about.click('button.copy[data-target="wmts-url"]');
    result.about.copied = await about.evaluate(() => navigator.clipboard.readText());
  }
  await about.screenshot({ path: `${shots}/about.png`, fullPage: true });
  await about.setViewportSize({ width: 390, height: 844 });
  result.about.phoneOverflow = await about.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  await about.screenshot({ path: `${shots}/about-phone.png`, fullPage: true });
} catch (e) {
  result.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
