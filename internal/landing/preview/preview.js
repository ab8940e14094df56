// The imagery preview: which tiles of a WMTS capabilities document to show, and showing them.
// chooseBlock picks the tiles: in the first tile matrix (document order,
// which is lowest zoom first) that has at least 4 × 2 usable tiles, else
// the first with 2 × 2, else the first at all, a block of up to 4 columns
// and 2 rows around its middle. matrices: [{id, width, height, limits}],
// limits optional {minRow, maxRow, minCol, maxCol} (inclusive, from
// TileMatrixSetLimits). Returns {matrix, rows: [...], cols: [...]} or null.
function chooseBlock(matrices) {
  const bounds = (m) => m.limits
    ? { r0: m.limits.minRow, r1: m.limits.maxRow, c0: m.limits.minCol, c1: m.limits.maxCol }
    : { r0: 0, r1: m.height - 1, c0: 0, c1: m.width - 1 };
  const size = (m) => { const b = bounds(m); return { rows: b.r1 - b.r0 + 1, cols: b.c1 - b.c0 + 1 }; };
  const usable = matrices.filter((m) => m.id !== "" && size(m).rows >= 1 && size(m).cols >= 1);
  const m = usable.find((m) => size(m).cols >= 4 && size(m).rows >= 2)
    || usable.find((m) => size(m).cols >= 2 && size(m).rows >= 2) || usable[0];
  if (!m) return null;
  const b = bounds(m), s = size(m);
  const nc = Math.min(4, s.cols), nr = Math.min(2, s.rows);
  const r0 = b.r0 + Math.floor((s.rows - nr) / 2), c0 = b.c0 + Math.floor((s.cols - nc) / 2);
  return { matrix: m.id, rows: Array.from({ length: nr }, (_, i) => r0 + i), cols: Array.from({ length: nc }, (_, i) => c0 + i) };
}

// fillTemplate fills a ResourceURL template's {Name} variables from vars
// (names compared without case, values percent-encoded); "" if the
// template needs a variable vars lacks (a dimension, say).
function fillTemplate(template, vars) {
  const lower = {};
  for (const k of Object.keys(vars)) lower[k.toLowerCase()] = String(vars[k]);
  let complete = true;
  const out = template.replace(/\{([^{}]*)\}/g, (_, name) => {
    const v = lower[name.toLowerCase()];
    if (v === undefined) { complete = false; return ""; }
    return encodeURIComponent(v);
  });
  return complete ? out : "";
}

const childrenNamed = (el, name) => [...el.children].filter((c) => c.localName === name);
const childText = (el, name) => { const c = childrenNamed(el, name)[0]; return c ? c.textContent.trim() : ""; };

// previewTiles reads a capabilities document: its first layer, that
// layer's default style and first tile matrix set, and its REST tile
// template (JPEG preferred). Returns {layer, matrix, cols, urls} or null.
function previewTiles(doc) {
  const contents = doc.getElementsByTagNameNS("*", "Contents")[0];
  const layer = contents && childrenNamed(contents, "Layer")[0];
  if (!layer) return null;
  const styles = childrenNamed(layer, "Style");
  const style = styles.find((s) => s.getAttribute("isDefault") === "true") || styles[0];
  const link = childrenNamed(layer, "TileMatrixSetLink")[0];
  if (!link) return null;
  const setId = childText(link, "TileMatrixSet");
  const limits = {};
  let limited = false;
  for (const set of childrenNamed(link, "TileMatrixSetLimits")) {
    for (const l of childrenNamed(set, "TileMatrixLimits")) {
      limited = true;
      limits[childText(l, "TileMatrix")] = { minRow: +childText(l, "MinTileRow"), maxRow: +childText(l, "MaxTileRow"),
        minCol: +childText(l, "MinTileCol"), maxCol: +childText(l, "MaxTileCol") };
    }
  }
  const set = childrenNamed(contents, "TileMatrixSet").find((s) => childText(s, "Identifier") === setId);
  if (!set) return null;
  const matrices = childrenNamed(set, "TileMatrix").map((m) => {
    const id = childText(m, "Identifier");
    return { id, width: +childText(m, "MatrixWidth"), height: +childText(m, "MatrixHeight"), limits: limits[id] };
  }).filter((m) => !limited || m.limits);
  const templates = childrenNamed(layer, "ResourceURL").filter((r) => r.getAttribute("resourceType") === "tile");
  const res = templates.find((r) => /jpe?g/i.test(r.getAttribute("format") || ""))
    || templates.find((r) => /png/i.test(r.getAttribute("format") || "")) || templates[0];
  const block = chooseBlock(matrices);
  if (!res || !block) return null;
  const vars = { TileMatrixSet: setId, TileMatrix: block.matrix, Style: style ? childText(style, "Identifier") : "default" };
  const urls = [];
  for (const row of block.rows) {
    for (const col of block.cols) urls.push(fillTemplate(res.getAttribute("template") || "", { ...vars, TileRow: row, TileCol: col }));
  }
  return { layer: childText(layer, "Identifier"), matrix: block.matrix, cols: block.cols.length, urls };
}

// showPreview shows a few tiles of doc's first layer in figure (a
// <figure> holding a .tiles grid and a <figcaption>) as plain images from
// this page's origin: the proxy answers each with the tile, or with a
// redirect to Hexagon (see landing.Render on why an image element and
// not a fetch()). current() says whether the figure still wants this
// answer.
function showPreview(doc, figure, current) {
  const p = previewTiles(doc);
  const grid = figure.querySelector(".tiles");
  const caption = figure.querySelector("figcaption");
  figure.hidden = false;
  // Only the proxy's own tile addresses: anything else the CSP would block anyway.
  if (!p || p.urls.some((u) => !u || new URL(u, location.href).origin !== location.origin)) {
    caption.textContent = "No preview: the service description has no tile address this page can show.";
    return;
  }
  grid.className = "tiles cols-" + p.cols;
  let loaded = 0, failed = 0;
  const done = () => {
    if (!current() || loaded + failed < p.urls.length) return;
    caption.textContent = failed === 0
      ? "A preview of " + p.layer + " at zoom level " + p.matrix + "."
      : failed + " of " + p.urls.length + " preview tiles of " + p.layer + " did not load; the imagery provider may have none at zoom level " + p.matrix + ". The address itself works.";
  };
  caption.textContent = "Loading a preview of " + p.layer + "…";
  for (const u of p.urls) {
    const img = new Image();
    img.alt = "";
    img.referrerPolicy = "no-referrer";
    img.decoding = "async";
    img.addEventListener("load", () => { loaded++; done(); });
    img.addEventListener("error", () => { failed++; done(); });
    img.src = u;
    grid.append(img);
  }
  grid.setAttribute("role", "img");
  grid.setAttribute("aria-label", "Imagery preview: " + p.urls.length + " tiles of " + p.layer);
}
