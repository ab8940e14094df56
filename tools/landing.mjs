// What the landing-page drivers (landing-key.mjs, landing-refused.mjs)
// share: how the page marks its addresses, and the tests' upstream switch.

// marks reads how the page marks its addresses now: the status line, the
// note beside the addresses, whether each address is struck through and
// invalid, whether each Copy button is off, and the WMTS address.
export function marks(page) {
  return page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    return {
      status: $("status").textContent.trim(), statusClass: $("status").className,
      note: $("addr-state").textContent.trim(), noteClass: $("addr-state").className, noteHidden: $("addr-state").hidden,
      broken: ["wmts-url", "wms-url"].map((id) => $(id).classList.contains("broken")),
      ariaInvalid: ["wmts-url", "wms-url"].map((id) => $(id).getAttribute("aria-invalid")),
      copyDisabled: [...document.querySelectorAll("button.copy")].map((b) => b.disabled),
      wmts: $("wmts-url").value,
    };
  });
}

// control GETs base/what on a test's switch for its fake upstream
// ("fail" makes it fail, "heal" mends it), and throws unless it took.
export async function control(base, what) {
  const resp = await fetch(base + "/" + what);
  if (!resp.ok) throw new Error("control " + what + ": " + resp.status);
}
