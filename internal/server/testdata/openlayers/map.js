// A web map as its developer would write it with OpenLayers' full build
// (the global ol): the layer comes from the service's own capabilities,
// read from the proxy with fetch, and its tiles are drawn in an ol.Map.
//
// The page's query says what to draw: wmts=<capabilities URL> (and,
// optionally, layer=<identifier>; else the first), or wms=<capabilities
// URL> for a WMS 1.1.1 service (its first named layer, from the GetMap
// address its capabilities give). Tiles are fetched with crossOrigin
// "anonymous", as a map whose pixels are read (exports, printing) must:
// the proxy's CORS answer is what keeps the canvas readable.
//
// When the map has rendered, window.drawn holds {tiles: {start, end,
// error}, canvas: PNG data URL of the map, width, height}, or {error}.
(async () => {
  const q = new URLSearchParams(location.search);
  const counts = { start: 0, end: 0, error: 0 };
  const count = (source) => {
    source.on("tileloadstart", () => counts.start++);
    source.on("tileloadend", () => counts.end++);
    source.on("tileloaderror", () => counts.error++);
    return source;
  };
  try {
    let source;
    if (q.has("wmts")) {
      const resp = await fetch(q.get("wmts"));
      if (!resp.ok) throw new Error("capabilities: HTTP " + resp.status);
      const caps = new ol.format.WMTSCapabilities().read(await resp.text());
      const layer = q.get("layer") || caps.Contents.Layer[0].Identifier;
      const options = ol.source.WMTS.optionsFromCapabilities(caps, { layer });
      if (!options) throw new Error("no layer " + layer + " in the capabilities");
      source = new ol.source.WMTS({ ...options, crossOrigin: "anonymous" });
    } else if (q.has("wms")) {
      const resp = await fetch(q.get("wms"));
      if (!resp.ok) throw new Error("capabilities: HTTP " + resp.status);
      const caps = new ol.format.WMSCapabilities().read(await resp.text());
      const named = (l) => l.Name ? l : (l.Layer || []).map(named).find(Boolean);
      const layer = named(caps.Capability.Layer);
      const getMap = caps.Capability.Request.GetMap.DCPType[0].HTTP.Get.OnlineResource;
      source = new ol.source.TileWMS({
        url: getMap,
        params: { LAYERS: layer.Name, VERSION: "1.1.1", FORMAT: "image/png" },
        crossOrigin: "anonymous",
      });
    } else {
      throw new Error("nothing to draw: give wmts= or wms=");
    }
    const map = new ol.Map({
      target: "map",
      layers: [new ol.layer.Tile({ source: count(source) })],
      view: new ol.View({ center: [0, 0], zoom: 2 }),
    });
    map.once("rendercomplete", () => {
      try {
        // One canvas per layer; this map has one.
        const canvas = map.getViewport().querySelector(".ol-layer canvas");
        window.drawn = { tiles: counts, canvas: canvas.toDataURL("image/png"), width: canvas.width, height: canvas.height };
      } catch (e) {
        window.drawn = { tiles: counts, error: String(e) };
      }
    });
  } catch (e) {
    window.drawn = { tiles: counts, error: String(e) };
  }
})();
