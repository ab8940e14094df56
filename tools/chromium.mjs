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
