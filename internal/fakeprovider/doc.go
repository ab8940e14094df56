// Package fakeprovider holds in-process stand-ins for the licensed imagery
// providers that HexProx's provider profiles (issue 23) serve beside
// Hexagon, and the few helpers they share: tile images, a Web Mercator
// tile matrix list, the capabilities templates (parsed with XML escaping,
// rendered, and the base they name), a delay that gives up when the
// caller leaves, the Retry-After of a forced status, and
// concurrency-safe holders for a fake's switches (Switchboard) and its API
// keys (Keys). Package faketest holds what their tests share.
//
// Each fake is written from shared/providers.md (December 2026) and the
// sources it cites; each package's doc comment names them. providers.md
// labels facts [E] (the provider's own documentation or code), [W]
// (third-party code or notes) and [I] (inference). The fakes keep those
// labels:
//
//   - planet: Planet Basemaps WMTS. [E] capabilities at
//     /basemaps/v1/mosaics/wmts?api_key= on the API host, GetTile href and
//     ResourceURL templates on a second (tiles) host with ?api_key= in
//     every template, layers named after mosaics, style "Default", tile
//     matrix set GoogleMapsCompatible15 (zoom 0–15), 256 px PNG; the key as
//     api_key, "Authorization: api-key", or HTTP Basic username; 404 for a
//     mosaic the key may not see; 429, which "may include" Retry-After. [I] 401 for a
//     wrong or missing key (a switch answers 404 instead, the reading of
//     providers.md §9), the JSON error body.
//   - nearmap: Nearmap WMTS and WMS v1. [E] the key as a path segment
//     /apikey/{key}, as the apikey query parameter or as
//     "Authorization: Apikey" (capital A, exactly); 429; X-Ratelimit-Limit
//     on every answer; layer "nearmap.com". [W] WMS 1.1.1 only, errors as a
//     ServiceExceptionReport with HTTP 200. [I] the capabilities path
//     .../1.0.0/WMTSCapabilities.xml and the REST tile path, the key in the
//     path of every capabilities URL, a request passing if any of the three
//     places holds a live key, X-Ratelimit-Remaining and -Reset and their
//     meaning, Retry-After on the 429, 401 for a wrong key.
//   - vexcel: Vexcel v2. [E] POST /v2/auth/login with username and password
//     in the query, the JSON answer with date-creation and date-expiration
//     without a time zone, 24 h tokens, WMTS under /v2/ortho/wmts, the
//     token as Bearer or token= and the long-lived api_key as X-API-KEY
//     (header or parameter); Cache-Control max-age=21515 on tiles (v1
//     docs). [W] the api_key= parameter, layers urban and wide-area, tile
//     matrix sets named after the layer, style RGB, 403 "Unauthorized by
//     Service" for a dead token, JWT-shaped tokens. [I] whether capabilities carry the token (a switch), the
//     zone the dates are written in (UTC unless set), 401 for a bad login.
//   - maxar: Maxar's platform (MGP). [E] the Keycloak password grant with
//     client_id mgp and its refresh (7199 s tokens, 43199 s refresh
//     tokens), streaming WMTS (KVP) and WMS 1.3.0/1.1.1, the key as
//     maxar_api_key, the maxar-api-key header or a Bearer token, keys that
//     live at most 180 days, 401/403 refusals, exceptions answered 200, the
//     429 JSON body. [W] tile matrix set EPSG:3857, a blank 200 tile for a
//     misspelled CQL property. [I] the Keycloak error bodies, the
//     EPSG:3857:{z} matrix names, whether capabilities echo the key (a
//     switch), Retry-After on the 429.
//
// Each fake is an http.Handler (Planet has two, one per host), safe for
// concurrent use, with Options (a settable clock where tokens expire),
// atomic counters, and Switches that make it fail the documented ways.
// Nothing in production imports these packages.
package fakeprovider
