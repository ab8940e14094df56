package usage

// Kind is one thing counted about a request. A request is counted once,
// under exactly one request kind: the kind of what was served when it
// succeeded, or its error class when it failed (ErrorKind). BytesStreamed
// is a byte count that accompanies TileStreamed, not a request.
type Kind uint8

// The kinds counted, in the order of Counts.
const (
	TilesRedirected Kind = iota // a WMTS tile answered with a 302 to Hexagon
	TilesStreamed               // a WMTS tile streamed through the proxy (browsers)
	BytesStreamed               // bytes streamed (tiles and WMS responses); not a request
	Capabilities                // a capabilities document served (WMTS or WMS)
	WMSGetMap                   // a WMS GetMap served (redirected or streamed)
	WMSOther                    // GetFeatureInfo, GetLegendGraphic
	Refused                     // 403: a credential or origin refused
	RateLimited                 // 429: over a limit of ours, or Hexagon's
	BadRequest                  // any other 4xx
	UpstreamFailed              // 5xx: Hexagon failed or was too slow
	About                       // a key's about page (JSON or HTML)
	numKinds
)

// NumKinds is the number of kinds; Counts has one slot per kind.
const NumKinds = int(numKinds)

var kindNames = [numKinds]string{
	"tiles_redirected", "tiles_streamed", "bytes_streamed", "capabilities",
	"wms_getmap", "wms_other", "refused", "rate_limited", "bad_request", "upstream_failed", "about",
}

// String is the kind's snake_case name, as reports' columns and JSON use it.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Kinds lists every kind in Counts order.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// ErrorKind returns the error class of an HTTP status: 403 Refused, 429
// RateLimited, other 4xx BadRequest, 5xx UpstreamFailed. ok is false for
// statuses below 400, which are counted by what was served instead.
func ErrorKind(status int) (k Kind, ok bool) {
	switch {
	case status == 403:
		return Refused, true
	case status == 429:
		return RateLimited, true
	case status >= 400 && status < 500:
		return BadRequest, true
	case status >= 500:
		return UpstreamFailed, true
	}
	return 0, false
}

// Counts holds one total per Kind, indexed by Kind.
type Counts [numKinds]int64

// Requests is the number of requests: every kind but BytesStreamed.
func (c Counts) Requests() int64 {
	var n int64
	for k, v := range c {
		if Kind(k) != BytesStreamed {
			n += v
		}
	}
	return n
}

// Quota is what a daily_requests limit counts: every request except the
// ones refused with 429 (they cost the licence nothing, and counting them
// would keep a client that is over its limit over it for longer).
func (c Counts) Quota() int64 { return c.Requests() - c[RateLimited] }

// Add adds o into c.
func (c *Counts) Add(o Counts) {
	for k := range c {
		c[k] += o[k]
	}
}
