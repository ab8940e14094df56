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
import { launch } from "./chromium.mjs";

const cfg = JSON.parse(process.argv[2]);
const browser = await launch();
const out = { pages: {} };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  // Runs before the page's own script; the page's CSP does not apply to it.
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__violations.push(e.violatedDirective + " " + e.blockedURI);
    });
  });
  for (const [name, url] of Object.entries(cfg.pages)) {
    const page = await context.newPage();
    const r = { consoleErrors: [], requests: [] };
    page.on("console", (m) => { if (m.type() === "error") r.consoleErrors.push(m.text()); });
    page.on("pageerror", (e) => r.consoleErrors.push(String(e)));
    page.on("request", (q) => r.requests.push(q.url()));
    const resp = await page.goto(url);
    r.status = resp.status();
    r.csp = resp.headers()["content-security-policy"] || "";
    if (await page.$("#preview")) {
      // Every tile loaded or failed, or the page said there is no preview.
      await page.waitForFunction(() => {
        const imgs = [...document.querySelectorAll("#tiles img")];
        return (imgs.length > 0 && imgs.every((i) => i.complete)) ||
          document.getElementById("preview-caption").textContent.startsWith("No preview");
      }, null, { timeout: 15000 });
      // The caption follows the last tile's load event.
      await page.waitForFunction(() => !document.getElementById("preview-caption").textContent.startsWith("Loading"),
        null, { timeout: 5000 }).catch(() => {});
      r.tiles = await page.$$eval("#tiles img", (imgs) => imgs.map((i) => ({ src: i.src, naturalWidth: i.naturalWidth })));
      r.caption = (await page.textContent("#preview-caption")).trim();
      await page.screenshot({ path: `${cfg.shots}/about-preview-${name}.png`, fullPage: true });
    }
    r.violations = await page.evaluate(() => window.__violations || []);
    out.pages[name] = r;
    await page.close();
  }
} catch (e) {
  out.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
