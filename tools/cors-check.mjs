// Fetches HexProx URLs from pages on other origins in headless Chromium
// (Debian's, through playwright-core), with credentials: 'include', as
// the ArcGIS Maps SDK does for a server on its trustedServers list, and
// prints what each fetch got as JSON for the Go test that started them.
//
//   node tools/cors-check.mjs '<json>'
//
// with {pages: [page URL, ...], urls: [URL to fetch, ...]}; the result is
// {results: {page URL: [{url, ok, status, bytes, error}, ...]}}.
import { launch } from "./chromium.mjs";

const cfg = JSON.parse(process.argv[2]);
const browser = await launch();
const out = { results: {} };
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  for (const pageURL of cfg.pages) {
    await page.goto(pageURL);
    out.results[pageURL] = await page.evaluate(async (urls) => {
      const got = [];
      for (const url of urls) {
        try {
          const resp = await fetch(url, { credentials: "include" });
          const body = await resp.arrayBuffer();
          got.push({ url, ok: resp.ok, status: resp.status, bytes: body.byteLength });
        } catch (e) {
          got.push({ url, ok: false, status: 0, bytes: 0, error: String(e) });
        }
      }
      return got;
    }, cfg.urls);
  }
} catch (e) {
  out.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
