// launch starts headless Chromium (Debian's, or CHROMIUM_PATH) through
// playwright-core, with the flags every browser test uses: no sandbox
// (containers), no GPU, and nothing that talks to the network unasked.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// run launches the browser, calls body(browser), and prints out as JSON
// for the Go test that started the script: with out.error when body
// threw, and the browser closed either way.
export async function run(out, body) {
  const browser = await launch();
  try {
    await body(browser);
  } catch (e) {
    out.error = String(e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

// watchViolations makes every page of context keep the CSP violations it
// reports (securitypolicyviolation events), for violations to read. The
// script runs before the page's own; the page's CSP does not apply to it.
export function watchViolations(context) {
  return context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__violations.push(e.violatedDirective + " " + e.blockedURI);
    });
  });
}

// violations is what watchViolations kept of page: "directive blockedURI" each.
export function violations(page) {
  return page.evaluate(() => window.__violations || []);
}

// record keeps what page shows of its errors and traffic in r: its
// console errors and uncaught exceptions in r.consoleErrors (each as
// entry makes it of the text), every URL it asks for in r.requests.
export function record(page, r, entry = (text) => text) {
  page.on("console", (m) => { if (m.type() === "error") r.consoleErrors.push(entry(m.text())); });
  page.on("pageerror", (e) => r.consoleErrors.push(entry(String(e))));
  page.on("request", (q) => r.requests.push(q.url()));
}

// recordResponses keeps every answer page receives in r.responses:
// {url, status, headers (as JSON), body (base64) or bodyError}, without
// the body for answers from the origin own (when given). It returns a
// function whose promise settles when every answer so far is kept.
export function recordResponses(page, r, own) {
  const pending = [];
  page.on("response", (resp) => {
    pending.push((async () => {
      const e = { url: resp.url(), status: resp.status(), headers: JSON.stringify(await resp.allHeaders()) };
      if (new URL(resp.url()).origin !== own) {
        try {
          e.body = (await resp.body()).toString("base64");
        } catch (err) {
          e.bodyError = String(err);
        }
      }
      r.responses.push(e);
    })());
  });
  return () => Promise.all(pending);
}

// previewLoaded waits until every tile of the page's imagery preview has
// loaded or failed (or the page said there is no preview), and then for
// the caption, which follows the last tile's load event.
export async function previewLoaded(page) {
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll("#tiles img")];
    return (imgs.length > 0 && imgs.every((i) => i.complete)) ||
      document.getElementById("preview-caption").textContent.startsWith("No preview");
  }, null, { timeout: 15000 });
  await page.waitForFunction(() => !document.getElementById("preview-caption").textContent.startsWith("Loading"),
    null, { timeout: 5000 }).catch(() => {});
}
