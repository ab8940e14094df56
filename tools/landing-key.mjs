// Drives the landing page's key mode in headless Chromium (Debian's,
// through playwright-core) for API keys of any provider, the way a key
// holder would, and prints what the browser saw as JSON for the Go test
// that started the proxies.
//
//   node tools/landing-key.mjs '<json>'
//
// with {cases: {name: {url, key, revokedKey, control, cachedKey,
// uncachedKey}}, shots}: url is a proxy's landing page, key an active API
// key of that proxy, revokedKey a revoked one; control (optional) the
// test's switch for the provider, and cachedKey and uncachedKey two more
// active keys (see the outage below). For each case, on a page of its
// own: the key mode chosen by keyboard, the key pasted, both addresses
// copied, Check pressed, the preview's tiles waited for; then the revoked
// key typed and Enter pressed; then, with control, the provider failing:
// cachedKey checked, and uncachedKey. The result is
// {cases: {name: {keyMode, checkHint, wmts, wms, copiedWmts, copiedWms,
// requestsBeforeCheck, ok: {class, text, caption, tiles: [{src,
// naturalWidth, naturalHeight, colours, opaque}]}, okMarks, revoked:
// {class, text}, revokedMarks, revokedClipboard, outageCached (as ok),
// outage, outageMarks, dom, requests,
// responses: [{url, status, headers, body (base64), bodyError}],
// consoleErrors: [{phase, text}], violations}}, error}. colours is the
// number of distinct colours among a tile's pixels (1: blank), opaque the
// number of its pixels that are not fully transparent; dom is the page's
// markup, visible text and field values after each step.
import { previewLoaded, record, recordResponses, run, violations, watchViolations } from "./chromium.mjs";
import { control, marks } from "./landing.mjs";

const cfg = JSON.parse(process.argv[2]);
const out = { cases: {} };

// dom is everything the page holds that a person or a script could read.
const dom = (page) => page.evaluate(() => document.documentElement.outerHTML + "\n" + document.body.innerText + "\n" +
  [...document.querySelectorAll("input")].map((i) => i.value).join("\n"));

// status waits for the answer to a Check and returns it.
async function status(page) {
  await page.waitForSelector("#status.ok, #status.err", { timeout: 15000 });
  return { class: await page.getAttribute("#status", "class"), text: (await page.textContent("#status")).trim() };
}

// tiles waits for the preview (previewLoaded), then reads each tile's
// pixels through a canvas (the tiles are of the page's own origin, so
// the canvas stays readable).
async function tiles(page) {
  await previewLoaded(page);
  return page.$$eval("#tiles img", (imgs) => imgs.map((i) => {
    const t = { src: i.src, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight, colours: 0, opaque: 0 };
    if (i.naturalWidth > 0) {
      const c = document.createElement("canvas");
      c.width = i.naturalWidth;
      c.height = i.naturalHeight;
      const g = c.getContext("2d");
      g.drawImage(i, 0, 0);
      const px = g.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      for (let p = 0; p < px.length; p += 4) {
        seen.add((px[p] << 24 | px[p + 1] << 16 | px[p + 2] << 8 | px[p + 3]) >>> 0);
        if (px[p + 3] !== 0) t.opaque++;
      }
      t.colours = seen.size;
    }
    return t;
  }));
}

await run(out, async (browser) => {
  for (const [name, c] of Object.entries(cfg.cases)) {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 1000 },
      permissions: ["clipboard-read", "clipboard-write"],
    });
    await watchViolations(context);
    const page = await context.newPage();
    const r = { consoleErrors: [], requests: [], responses: [] };
    let phase = "load";
    record(page, r, (text) => ({ phase, text }));
    const responded = recordResponses(page, r);

    await page.goto(c.url);

    // The key mode, as a keyboard user chooses it: the radio group's arrow keys.
    phase = "key";
    await page.focus("#mode-credentials");
    await page.keyboard.press("ArrowDown");
    r.keyMode = await page.isChecked("#mode-key") && await page.isVisible("#api-key") && !(await page.isVisible("#client-id"));
    r.checkHint = (await page.textContent("#check + .hint")).trim();
    await page.getByLabel("API key", { exact: true }).fill(c.key);
    r.wmts = await page.inputValue("#wmts-url");
    r.wms = await page.inputValue("#wms-url");
    r.requestsBeforeCheck = r.requests.filter((u) => u !== c.url).length;
    await page.click('button.copy[data-target="wmts-url"]');
    r.copiedWmts = await page.evaluate(() => navigator.clipboard.readText());
    await page.click('button.copy[data-target="wms-url"]');
    r.copiedWms = await page.evaluate(() => navigator.clipboard.readText());

    phase = "check";
    await page.click("#check");
    r.ok = await status(page);
    if (r.ok.class === "ok") {
      r.ok.tiles = await tiles(page);
      r.ok.caption = (await page.textContent("#preview-caption")).trim();
    }
    r.okMarks = await marks(page);
    await page.screenshot({ path: `${cfg.shots}/landing-key-${name}.png`, fullPage: true });
    r.dom = await dom(page);

    // The revoked key, by keyboard only: Enter in the key field checks.
    phase = "revoked";
    await page.getByLabel("API key", { exact: true }).fill(c.revokedKey);
    await page.keyboard.press("Enter");
    r.revoked = await status(page);
    r.revokedMarks = await marks(page);
    // A click on a disabled Copy copies nothing.
    await page.evaluate(() => navigator.clipboard.writeText("clipboard before"));
    await page.click('button.copy[data-target="wmts-url"]', { force: true });
    r.revokedClipboard = await page.evaluate(() => navigator.clipboard.readText());
    await page.screenshot({ path: `${cfg.shots}/landing-key-${name}-revoked.png`, fullPage: true });
    r.dom += "\n" + await dom(page);

    // An outage, where the test gives a control address (GET control/fail
    // makes the provider fail, control/heal mends it): cachedKey, a key
    // over the same provider key as key, whose capabilities the proxy
    // still has but whose tiles (new to this browser) fail; then
    // uncachedKey, over a provider key the proxy has not fetched
    // capabilities with.
    if (c.control) {
      phase = "outage";
      await control(c.control, "fail");
      try {
        await page.getByLabel("API key", { exact: true }).fill(c.cachedKey);
        await page.click("#check");
        r.outageCached = await status(page);
        if (r.outageCached.class === "ok") {
          r.outageCached.tiles = await tiles(page);
          r.outageCached.caption = (await page.textContent("#preview-caption")).trim();
        }
        await page.getByLabel("API key", { exact: true }).fill(c.uncachedKey);
        await page.click("#check");
        r.outage = await status(page);
        r.outageMarks = await marks(page);
        await page.screenshot({ path: `${cfg.shots}/landing-key-${name}-outage.png`, fullPage: true });
        r.dom += "\n" + await dom(page);
      } finally {
        await control(c.control, "heal");
      }
    }

    r.violations = await violations(page);
    await responded();
    out.cases[name] = r;
    await context.close();
  }
});
