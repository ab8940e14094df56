// Opens web-map pages that draw with OpenLayers in headless Chromium
// (Debian's, through playwright-core), waits until each map has rendered,
// and prints what the browser saw as JSON for the Go test that started
// the proxy and the page's own server.
//
//   node tools/openlayers.mjs '<json>'
//
// with {pages: {name: page URL, ...}, shots}; the result is {pages:
// {name: {drawn, requests, responses, consoleErrors}}, error}, where
// drawn is what the page put in window.drawn (tile counts, the map's
// canvas as a PNG data URL, or its error), requests every URL the page
// asked for, and responses every answer it received: {url, status,
// headers, body (base64)}, so that the test can look for secrets in
// all of it (bodies from the page's own origin, which serves the page
// and OpenLayers, are left out).
import { record, recordResponses, run } from "./chromium.mjs";

const cfg = JSON.parse(process.argv[2]);
const out = { pages: {} };
await run(out, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 }, deviceScaleFactor: 1 });
  for (const [name, url] of Object.entries(cfg.pages)) {
    const page = await context.newPage();
    const r = { consoleErrors: [], requests: [], responses: [] };
    record(page, r);
    page.on("requestfailed", (q) => r.consoleErrors.push("request failed: " + q.url() + " " + (q.failure()?.errorText || "")));
    const responded = recordResponses(page, r, new URL(url).origin);
    await page.goto(url);
    await page.waitForFunction(() => window.drawn, null, { timeout: 20000 });
    r.drawn = await page.evaluate(() => window.drawn);
    await responded();
    if (cfg.shots) {
      await page.screenshot({ path: `${cfg.shots}/openlayers-${name}.png` });
    }
    out.pages[name] = r;
    await page.close();
  }
});
