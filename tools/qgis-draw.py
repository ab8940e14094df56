"""Draws WMTS layers with QGIS's own WMS/WMTS provider, headless, the way
a QGIS user adds a layer from a capabilities URL, and prints what it saw
as JSON for the Go test that started it.

    /usr/bin/python3 tools/qgis-draw.py '<json>'

with {"layers": [{"name": ..., "url": capabilities URL}, ...],
      "extent": [xmin, ymin, xmax, ymax] in EPSG:3857, "size": pixels};
each layer's first layer, style and tile matrix set are read from its
capabilities with OWSLib (as QGIS's dialog lists them), then the layer is
made with the "wms" provider and rendered. The result is
{"results": [{"name", "valid", "error", "layer", "painted", "pixels"}]}:
painted is how many of the rendered image's pixels are not transparent.
"""
import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

from owslib.wmts import WebMapTileService  # noqa: E402
from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsRasterLayer,
    QgsRectangle,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402
from urllib.parse import quote  # noqa: E402

cfg = json.loads(sys.argv[1])
app = QgsApplication([], False)
app.initQgis()
out = {"results": []}
try:
    for spec in cfg["layers"]:
        r = {"name": spec["name"], "valid": False, "error": "", "layer": "", "painted": 0, "pixels": 0}
        out["results"].append(r)
        try:
            caps = WebMapTileService(spec["url"])
            name = list(caps.contents)[0]
            lyr = caps.contents[name]
            style = next(iter(lyr.styles), "default")
            tms = next(iter(lyr.tilematrixsetlinks))
            fmt = (lyr.formats or ["image/png"])[0]
        except Exception as e:  # noqa: BLE001
            r["error"] = "capabilities: " + str(e)
            continue
        r["layer"] = name
        uri = "&".join([
            "contextualWMSLegend=0", "crs=EPSG:3857", "dpiMode=7",
            "format=" + fmt, "layers=" + quote(name, safe=""), "styles=" + quote(style, safe=""),
            "tileMatrixSet=" + quote(tms, safe=""), "url=" + quote(spec["url"], safe=""),
        ])
        layer = QgsRasterLayer(uri, spec["name"], "wms")
        if not layer.isValid():
            r["error"] = layer.error().summary()
            continue
        r["valid"] = True
        settings = QgsMapSettings()
        settings.setBackgroundColor(QColor(0, 0, 0, 0))  # what no tile paints stays transparent
        settings.setLayers([layer])
        settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
        settings.setExtent(QgsRectangle(*cfg["extent"]))
        settings.setOutputSize(QSize(cfg["size"], cfg["size"]))
        job = QgsMapRendererSequentialJob(settings)
        job.start()
        job.waitForFinished()
        img = job.renderedImage()
        painted = 0
        for y in range(img.height()):
            for x in range(img.width()):
                if (img.pixel(x, y) >> 24) & 0xFF:
                    painted += 1
        r["painted"], r["pixels"] = painted, img.width() * img.height()
        errors = job.errors()
        if errors:
            r["error"] = "; ".join(e.message for e in errors)
finally:
    app.exitQgis()
print(json.dumps(out))
