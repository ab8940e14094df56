package provider

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
)

// Hexagon is the name of the default provider: a key's set that names
// no provider is Hexagon's, and Hexagon's requests take the paths they
// always took (built by packages wmts and wms), not the pass-through form.
const Hexagon = "hexagon"

// Host is one upstream host of a profile, and the paths below it that
// clients may reach through the proxy.
type Host struct {
	Role string // [a-z]: "api", "tiles"; in the proxy's URLs as "/~{Role}"
	Base string // scheme://host[:port], no trailing slash; a setting may replace it
	// Allowed are the path prefixes (decoded, without a trailing slash)
	// below which requests may go; see PassPath.
	Allowed []string
}

// Service is one of a profile's entry points: a path on a host, with
// the fixed query it takes (without the credential).
type Service struct {
	Role  string
	Path  string
	Query string // "SERVICE=WMTS&REQUEST=GetCapabilities", or ""
}

// Profile describes an upstream imagery service other than Hexagon:
// where its WMTS (and WMS) live, how a set becomes what goes upstream (a
// static key, or a login's token), where that goes, which client
// parameters could smuggle a credential in, and which of its answers
// mean what. docs/provider-profiles.md has the design; the
// facts come from shared/providers.md, whose labels ([E] documented, [W]
// seen in third-party code, [I] inferred) the comments repeat.
type Profile struct {
	Name  string // "planet"
	Title string // "Planet Basemaps", in messages to key holders
	Hosts []Host
	WMTS  Service  // the capabilities document
	WMS   *Service // nil: the provider has no WMS
	// TokenEndpoint, if not nil, is where a set that is not a static key
	// becomes a token, by Grant: a username and password (Vexcel's login,
	// Maxar's password grant) or a client id and secret (an operator's
	// OAuth2 profile). nil means every set is a static key.
	TokenEndpoint *Service
	Grant         Grant
	// ClientID is the fixed client_id a password grant sends (Maxar's
	// "mgp"); InBody sends a client-credentials grant's id and secret in
	// the form instead of as HTTP Basic authentication (RFC 6749 §2.3.1's
	// default); Scopes are the scopes a client-credentials grant asks for.
	ClientID string
	InBody   bool
	Scopes   []string
	// AlsoKeys reports that a set may be a static key even though
	// TokenEndpoint is set (Maxar takes API keys or a login). Without
	// TokenEndpoint, every set is one.
	AlsoKeys bool
	// Place is where a static key goes on every upstream request; each
	// placement applies where its After prefix (if any) matches.
	// TokenPlace is where a token from TokenEndpoint goes; nil means Place.
	Place      []Placement
	TokenPlace []Placement
	// Strip names the query parameters a client or a document may carry
	// a credential in: dropped, in any case, from every request and every
	// URL a document shows (CommonStrip is added to it).
	Strip []string
	// NotLicensed is the status the provider answers for a resource the
	// key may not see, when it is not 403 (Planet: 404, [E]).
	NotLicensed int
	// Pass are response headers relayed beside the usual ones
	// (Nearmap's X-Ratelimit-*).
	Pass []string
	// KeyLifetime is the longest life the provider gives its keys (Maxar:
	// 180 days); 0 when not known. The keys CLI warns when such a key's
	// end is not given, or given beyond it.
	KeyLifetime time.Duration
	// Licence is what the provider's terms say of sharing one credential
	// between organisations, for the README and the keys CLI's warning;
	// "" when nothing is known against it.
	Licence string
}

// CommonStrip are credential parameters dropped from every provider's
// requests, whatever its own: a client must not reach any upstream with
// a credential of its own through the proxy.
var CommonStrip = []string{"access_token", "api_key", "apikey", "token", "authtoken", "maxar_api_key", "connectid", "key", "x-api-key"}

// StripAll is the profile's Strip, CommonStrip, and the names of its own
// query placements (of keys and tokens): an operator's profile may place
// its credential as a parameter no list names.
func (p *Profile) StripAll() []string {
	out := append(append([]string(nil), CommonStrip...), p.Strip...)
	for _, pl := range append(append([]Placement(nil), p.Place...), p.TokenPlace...) {
		if pl.In == InQuery {
			out = append(out, pl.Name)
		}
	}
	return out
}

// Grant names how a profile's TokenEndpoint turns a set into a token.
type Grant string

const (
	// GrantLogin is Vexcel's login: a POST with the username and
	// password in the query, a JSON token and end (token.Login).
	GrantLogin Grant = "login"
	// GrantPassword is OAuth2's password grant, renewed by its refresh
	// token (Maxar; token.Password).
	GrantPassword Grant = "password"
	// GrantClient is OAuth2's client-credentials grant in its standard
	// POST form (token.ClientCredentials).
	GrantClient Grant = "client_credentials"
)

// KeyTokenType is the TokenType of the token a static key stands as
// (token.NewStack sets it), so that Apply puts it where Place says and
// a grant's token where TokenPlace says.
const KeyTokenType = "static-key"

// Apply puts tok (a static key, or a grant's token) on a request to u
// with header h, in every place the profile names for its kind (each
// Placement applies only where its After prefix matches).
func (p *Profile) Apply(u *url.URL, h http.Header, tok *oauth2.Token) {
	for _, pl := range p.placements(tok.TokenType == KeyTokenType) {
		pl.Apply(u, h, tok.AccessToken)
	}
}

func (p *Profile) placements(key bool) []Placement {
	if key || p.TokenPlace == nil {
		return p.Place
	}
	return p.TokenPlace
}

// StripPath takes every path-segment spelling of a credential out of
// path (Placement.StripPath for each placement, of keys and tokens).
func (p *Profile) StripPath(path string) string {
	for _, pl := range p.Place {
		path = pl.StripPath(path)
	}
	for _, pl := range p.TokenPlace {
		path = pl.StripPath(path)
	}
	return path
}

// TakesKeys reports whether a set of the profile may be a static key.
func (p *Profile) TakesKeys() bool { return p.TokenEndpoint == nil || p.AlsoKeys }

// TakesLogins reports whether a set of the profile may be a username and
// password; TakesClients, a client id and secret.
func (p *Profile) TakesLogins() bool {
	return p.TokenEndpoint != nil && (p.Grant == GrantLogin || p.Grant == GrantPassword)
}

// TakesClients reports whether a set of the profile may be an OAuth2
// client id and secret.
func (p *Profile) TakesClients() bool { return p.TokenEndpoint != nil && p.Grant == GrantClient }

// Takes reports whether set c is of a form the profile takes.
func (p *Profile) Takes(c credential.Credential) bool {
	switch {
	case c.IsKey():
		return p.TakesKeys()
	case c.Client:
		return p.TakesClients()
	}
	return p.TakesLogins()
}

// Host returns the profile's host of role.
func (p *Profile) Host(role string) (Host, bool) {
	for _, h := range p.Hosts {
		if h.Role == role {
			return h, true
		}
	}
	return Host{}, false
}

// builtins are the providers HexProx knows beside Hexagon, by name.
var builtins = map[string]Profile{
	"planet": {
		Name: "planet", Title: "Planet Basemaps",
		// [E] docs.planet.com/develop/apis/tiles/wmts: capabilities on the
		// API host; [E] a recorded response: tile templates on a second
		// host, the key in every URL's query.
		Hosts: []Host{
			{Role: "api", Base: "https://api.planet.com", Allowed: []string{"/basemaps/v1/mosaics/wmts"}},
			{Role: "tiles", Base: "https://tiles.planet.com", Allowed: []string{"/basemaps/v1/planet-tiles"}},
		},
		WMTS:        Service{Role: "api", Path: "/basemaps/v1/mosaics/wmts"},
		Place:       []Placement{{In: InQuery, Name: "api_key"}}, // [E] "as a query parameter to all tile requests"
		NotLicensed: 404,                                         // [E] "the tile request results in a 404 error"
		// [E] support.planet.com 360016148637 (Education & Research): no
		// "service bureau, or time-sharing arrangements".
		Licence: "Planet licenses its imagery per customer (its Education & Research terms forbid service-bureau use)",
	},
	"vexcel": {
		Name: "vexcel", Title: "Vexcel",
		// [E] support1.vexceldata.com: POST /v2/auth/login?username=&password=,
		// a 24-hour token; [E] the v2 OpenAPI: the ortho/wmts tag, Bearer.
		Hosts:         []Host{{Role: "api", Base: "https://api.vexcelgroup.com", Allowed: []string{"/v2/ortho/wmts"}}},
		WMTS:          Service{Role: "api", Path: "/v2/ortho/wmts", Query: "SERVICE=WMTS&REQUEST=GetCapabilities&VERSION=1.0.0"},
		TokenEndpoint: &Service{Role: "api", Path: "/v2/auth/login"},
		Grant:         GrantLogin,
		TokenPlace:    []Placement{{In: InHeader, Name: "Authorization", Template: "Bearer {}"}},
	},
	"maxar": {
		Name: "maxar", Title: "Maxar",
		// [E] developers.maxar.com streaming-imagery guides: WMTS (KVP
		// GetCapabilities and GetTile on one path) and WMS on api.maxar.com;
		// keys as maxar_api_key= or the maxar-api-key header, tokens as
		// Bearer; a token from the Keycloak realm "mds" by the password
		// grant with client_id mgp, renewed by its refresh token.
		Hosts: []Host{
			{Role: "api", Base: "https://api.maxar.com", Allowed: []string{"/streaming/v1/ogc/wmts", "/streaming/v1/ogc/wms"}},
			{Role: "account", Base: "https://account.maxar.com"}, // the token endpoint: nothing passes through
		},
		WMTS:          Service{Role: "api", Path: "/streaming/v1/ogc/wmts", Query: "service=WMTS&request=GetCapabilities"},
		WMS:           &Service{Role: "api", Path: "/streaming/v1/ogc/wms"},
		TokenEndpoint: &Service{Role: "account", Path: "/auth/realms/mds/protocol/openid-connect/token"},
		Grant:         GrantPassword,
		ClientID:      "mgp",
		AlsoKeys:      true, // [E] "API keys are recommended for programmatic use"
		// [E] "API keys expire 180 days from creation by default. A custom
		// expiration date can be set but cannot exceed 180 days."
		KeyLifetime: 180 * 24 * time.Hour,
		// A header, not the query: a key in no URL cannot be echoed by a
		// document or a feature-info answer.
		Place:      []Placement{{In: InHeader, Name: "maxar-api-key"}},
		TokenPlace: []Placement{{In: InHeader, Name: "Authorization", Template: "Bearer {}"}},
		// [E] euspaceimaging.com group-license-summary: internal use only;
		// "using on behalf of another company" is commercial.
		Licence: "Maxar's Group License is for internal use: serving another company counts as commercial use",
	},
	"nearmap": {
		Name: "nearmap", Title: "Nearmap",
		// [E] nearmap-sample-code: WMTS at us0.nearmap.com/maps/api/wmts/v1/apikey/{key},
		// WMS at api.nearmap.com/wms/v1/latest/apikey/{key} (1.1.1 [W]).
		Hosts: []Host{
			{Role: "wmts", Base: "https://us0.nearmap.com", Allowed: []string{"/maps/api/wmts/v1"}},
			{Role: "api", Base: "https://api.nearmap.com", Allowed: []string{"/wms/v1/latest"}},
		},
		WMTS: Service{Role: "wmts", Path: "/maps/api/wmts/v1/1.0.0/WMTSCapabilities.xml"}, // the REST form's file name is [I]
		WMS:  &Service{Role: "api", Path: "/wms/v1/latest"},
		Place: []Placement{
			{In: InPath, Name: "apikey", After: "/maps/api/wmts/v1"},
			{In: InPath, Name: "apikey", After: "/wms/v1/latest"},
		},
		// [E] developer.nearmap.com API standards: X-Ratelimit-* on every answer.
		Pass: []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"},
		// [E] Nearmap US Products Agreement: "only to be used by the total
		// number of Authorized Users".
		Licence: "Nearmap licenses named Authorized Users of one licensee",
	},
}

// Builtin returns the built-in profile named name (any case), with hosts
// replaced as hosts says (role → base URL; nil: the provider's own), and
// an error when there is none. Hexagon is not among them: it is served by
// its own paths. Only Hosts is the caller's own: the other slices are
// the built-in's, not to be changed.
func Builtin(name string, hosts map[string]string) (*Profile, error) {
	p, ok := builtins[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q: built in are %s", name, strings.Join(Names(), ", "))
	}
	p.Hosts = append([]Host(nil), p.Hosts...)
	for i, h := range p.Hosts {
		if b, ok := hosts[h.Role]; ok && b != "" {
			p.Hosts[i].Base = strings.TrimSuffix(b, "/")
		}
	}
	return &p, nil
}

// Names lists Hexagon and the built-in profiles, Hexagon first.
func Names() []string { return append([]string{Hexagon}, builtinNames()...) }

// builtinNames lists the built-in profiles, sorted, Hexagon not among them.
func builtinNames() []string {
	var n []string
	for k := range builtins {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
