// Drives the landing page in headless Chromium (Debian's, through
// playwright-core) through Checks that fail and Checks that succeed, and
// prints how the page marked its addresses after each step as JSON for
// the Go test that started the proxy.
//
//   node tools/landing-refused.mjs '<json>'
//
// with {url, id, secret, wrongSecret, betaId, betaSecret, control, shots}:
// control is the test's switch for the fake Hexagon (GET control/fail
// makes its token endpoint fail, control/heal mends it). The result is
// {steps: {name: {status, statusClass, note, noteClass, noteHidden,
// broken, ariaInvalid, copyDisabled, wmts}}, consoleErrors, error}.
import { run } from "./chromium.mjs";
import { control, marks } from "./landing.mjs";

const cfg = JSON.parse(process.argv[2]);
const out = { steps: {}, consoleErrors: [] };

// check presses Check and waits for its answer.
async function check(page) {
  await page.click("#check");
  await page.waitForSelector("#status.ok, #status.err", { timeout: 15000 });
}

await run(out, async (browser) => {
  const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") out.consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => out.consoleErrors.push(String(e)));
  await page.goto(cfg.url);
  const secret = page.getByLabel("Client secret", { exact: true });

  await page.getByLabel("Client ID", { exact: true }).fill(cfg.id);
  await secret.fill(cfg.wrongSecret);
  out.steps.unchecked = await marks(page);
  await check(page);
  out.steps.refused = await marks(page);
  await page.screenshot({ path: `${cfg.shots}/landing-not-working.png`, fullPage: true });
  // A click on a disabled Copy copies nothing.
  await page.evaluate(() => navigator.clipboard.writeText("clipboard before"));
  await page.click('button.copy[data-target="wmts-url"]', { force: true });
  out.steps.refused.clipboard = await page.evaluate(() => navigator.clipboard.readText());

  // Other addresses: not checked yet. The refused ones again: still refused.
  await secret.fill(cfg.secret);
  out.steps.edited = await marks(page);
  await secret.fill(cfg.wrongSecret);
  out.steps.refusedAgain = await marks(page);
  await page.getByLabel("I have an API key").check();
  await page.getByLabel("A Hexagon client ID and secret").check();
  out.steps.refusedAfterModes = await marks(page);

  await secret.fill(cfg.secret);
  await check(page);
  out.steps.good = await marks(page);
  await page.click('button.copy[data-target="wmts-url"]');
  out.steps.good.clipboard = await page.evaluate(() => navigator.clipboard.readText());
  await secret.fill(cfg.secret + "x");
  out.steps.goodEdited = await marks(page);

  // The same addresses fail, then work: marked until the good Check.
  await page.getByLabel("Client ID", { exact: true }).fill(cfg.betaId);
  await secret.fill(cfg.betaSecret);
  await control(cfg.control, "fail");
  await check(page);
  out.steps.failed = await marks(page);
  await control(cfg.control, "heal");
  await check(page);
  out.steps.healed = await marks(page);
});
