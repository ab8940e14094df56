// Opens API keys' about pages in headless Chromium (Debian's, through
// playwright-core) as a key holder would, waits for each page's imagery
// preview, and prints what it saw as JSON for the Go test that started
// the proxy.
//
//   node tools/about-preview.mjs '<json>'
//
// with {pages: {name: about page URL, ...}, shots}; the result is
// {pages: {name: {status, csp, tiles: [{src, naturalWidth}], caption,
// violations, consoleErrors, requests}}, error}. violations are the CSP
// violations the page reported (securitypolicyviolation events).
import { previewLoaded, record, run, violations, watchViolations } from "./chromium.mjs";

const cfg = JSON.parse(process.argv[2]);
const out = { pages: {} };
await run(out, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await watchViolations(context);
  for (const [name, url] of Object.entries(cfg.pages)) {
    const page = await context.newPage();
    const r = { consoleErrors: [], requests: [] };
    record(page, r);
    const resp = await page.goto(url);
    r.status = resp.status();
    r.csp = resp.headers()["content-security-policy"] || "";
    if (await page.$("#preview")) {
      await previewLoaded(page);
      r.tiles = await page.$$eval("#tiles img", (imgs) => imgs.map((i) => ({ src: i.src, naturalWidth: i.naturalWidth })));
      r.caption = (await page.textContent("#preview-caption")).trim();
      await page.screenshot({ path: `${cfg.shots}/about-preview-${name}.png`, fullPage: true });
    }
    r.violations = await violations(page);
    out.pages[name] = r;
    await page.close();
  }
});
