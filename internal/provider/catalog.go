package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Catalog is the set of profiles a proxy serves beside Hexagon, by name:
// the built-in ones with their hosts as the settings say, and the
// operator's own (ParseProfiles). It is not changed after NewCatalog, so
// it is safe for concurrent use; the zero Catalog holds none.
type Catalog struct {
	profiles map[string]*Profile
}

// NewCatalog returns the built-in profiles, their hosts replaced as hosts
// says (name → role → base URL; nil: the providers' own), and own, the
// operator's profiles, which must not reuse a built-in name.
func NewCatalog(hosts map[string]map[string]string, own []Profile) (Catalog, error) {
	c := Catalog{profiles: map[string]*Profile{}}
	for _, name := range builtinNames() {
		p, err := Builtin(name, hosts[name])
		if err != nil {
			return Catalog{}, err
		}
		c.profiles[name] = p
	}
	for i := range own {
		p := own[i]
		if _, builtin := builtins[strings.ToLower(p.Name)]; builtin || strings.EqualFold(p.Name, Hexagon) {
			return Catalog{}, fmt.Errorf("provider %q is built in: give the operator's profile another name", p.Name)
		}
		if c.profiles[p.Name] != nil {
			return Catalog{}, fmt.Errorf("provider %q is defined twice", p.Name)
		}
		c.profiles[p.Name] = &p
	}
	return c, nil
}

// Get returns the profile named name (any case), or nil when the
// catalog has none of that name (Hexagon among them: it is no profile).
func (c Catalog) Get(name string) *Profile {
	return c.profiles[strings.ToLower(name)]
}

// Names lists the catalog's profiles, sorted, Hexagon not among them.
func (c Catalog) Names() []string {
	n := make([]string, 0, len(c.profiles))
	for k := range c.profiles {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// MaxProfilesSize is the largest profile file ParseProfiles reads, in
// bytes; maxProfiles, the most profiles it may hold.
const (
	MaxProfilesSize = 1 << 20
	maxProfiles     = 64
)

// profileJSON is one operator's profile in a PROVIDERS_FILE.
type profileJSON struct {
	Name       string              `json:"name"`
	Title      string              `json:"title"`
	Credential string              `json:"credential"` // "static" or "oauth2"
	Hosts      map[string]hostJSON `json:"hosts"`
	WMTS       string              `json:"wmts"` // "role:/path?query"
	WMS        string              `json:"wms"`
	TokenURL   string              `json:"token_url"`
	Auth       string              `json:"auth"` // "basic" (default) or "body"
	Scopes     []string            `json:"scopes"`
	Place      []placeJSON         `json:"place"`
	Strip      []string            `json:"strip"`
	// NotLicensed is the status of a resource the credential may not see,
	// beside 403.
	NotLicensed int      `json:"not_licensed"`
	Relay       []string `json:"relay"`
	Licence     string   `json:"licence"`
	// KeyLifetimeDays is the longest life the provider gives its keys.
	KeyLifetimeDays int `json:"key_lifetime_days"`
}

type hostJSON struct {
	URL   string   `json:"url"`
	Paths []string `json:"paths"`
}

// placeJSON is one placement: exactly one of Query, Header or Path.
type placeJSON struct {
	Query    string `json:"query"`
	Header   string `json:"header"`
	Template string `json:"template"`
	Path     string `json:"path"`
	After    string `json:"after"`
}

// ParseProfiles reads an operator's profiles: a JSON document
//
//	{"providers": [{
//	  "name": "eagleview", "title": "EagleView",
//	  "credential": "oauth2",            // or "static": each set is a key
//	  "token_url": "https://login.example.com/oauth2/token",
//	  "auth": "body",                    // or "basic" (the default, RFC 6749 §2.3.1)
//	  "scopes": ["imagery"],
//	  "hosts": {"api": {"url": "https://imagery.example.com", "paths": ["/wmts", "/wms"]}},
//	  "wmts": "api:/wmts?SERVICE=WMTS&REQUEST=GetCapabilities",
//	  "wms": "api:/wms",                 // optional
//	  "place": [{"header": "Authorization", "template": "Bearer {}"}],
//	  "strip": ["x-api-key"], "not_licensed": 404, "relay": ["X-RateLimit-Remaining"],
//	  "licence": "licensed per organisation",
//	  "key_lifetime_days": 365           // a static profile's keys' longest life
//	}]}
//
// A placement is {"query": NAME}, {"header": NAME, "template": "… {} …"}
// or {"path": NAME, "after": "/prefix"} (the credential as the segment
// after /NAME/). An oauth2 profile without place sends its token as
// Bearer. Every problem is reported at once, naming the profile and
// member; a URL is never repeated (it may hold a secret), only names
// and paths are.
func ParseProfiles(data []byte) ([]Profile, error) {
	if len(data) > MaxProfilesSize {
		return nil, fmt.Errorf("providers file is larger than %d bytes", MaxProfilesSize)
	}
	var doc struct {
		Providers []profileJSON `json:"providers"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("providers file is not the JSON it should be: %v", jsonProblem(err))
	}
	if len(doc.Providers) > maxProfiles {
		return nil, fmt.Errorf("providers file names more than %d providers", maxProfiles)
	}
	var errs []error
	out := make([]Profile, 0, len(doc.Providers))
	for i, j := range doc.Providers {
		p, err := j.profile()
		if err != nil {
			label := fmt.Sprintf("providers[%d]", i)
			if ValidName(j.Name) {
				label += " (" + j.Name + ")"
			}
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
			continue
		}
		out = append(out, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonProblem describes a decoding error without the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be %s", te.Field, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends early"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "it does not decode"
}

// ValidName reports whether s may name a provider: 2–20 lower-case
// letters and digits, starting with a letter.
func ValidName(s string) bool {
	if len(s) < 2 || len(s) > 20 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (j profileJSON) profile() (Profile, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	p := Profile{Name: j.Name, Title: strings.TrimSpace(j.Title), Scopes: j.Scopes, NotLicensed: j.NotLicensed, Licence: j.Licence}
	if !ValidName(j.Name) {
		bad("name must be 2–20 lower-case letters and digits, starting with a letter")
	}
	if p.Title == "" {
		p.Title = j.Name
	}
	if len(j.Hosts) == 0 {
		bad("hosts must name at least one host")
	}
	roles := make([]string, 0, len(j.Hosts))
	for role := range j.Hosts {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	for _, role := range roles {
		h := j.Hosts[role]
		if !validRole(role) || role == tokenRole {
			bad("hosts: role %q must be lower-case letters, and not %q", role, tokenRole)
			continue
		}
		base, err := hostBase(h.URL)
		if err != nil {
			bad("hosts.%s.url %v", role, err)
			continue
		}
		if len(h.Paths) == 0 {
			bad("hosts.%s.paths must list the path prefixes clients may reach", role)
		}
		allowed := make([]string, len(h.Paths))
		for i, a := range h.Paths {
			allowed[i] = strings.TrimSuffix(a, "/")
			if _, ok := PassPath(allowed[i], allowed[i:i+1]); !ok || strings.Contains(a, "%") {
				bad("hosts.%s.paths: %q must be a plain path below /, without dot segments or escapes", role, a)
			}
		}
		p.Hosts = append(p.Hosts, Host{Role: role, Base: base, Allowed: allowed})
	}
	var err error
	if p.WMTS, err = entry(j.WMTS, j.Hosts); err != nil {
		bad("wmts %v", err)
	}
	if j.WMS != "" {
		s, err := entry(j.WMS, j.Hosts)
		if err != nil {
			bad("wms %v", err)
		}
		p.WMS = &s
	}
	for i, pj := range j.Place {
		pl, err := pj.placement()
		if err != nil {
			bad("place[%d] %v", i, err)
			continue
		}
		p.Place = append(p.Place, pl)
	}
	switch j.Credential {
	case "static":
		if j.TokenURL != "" || j.Auth != "" || len(j.Scopes) > 0 {
			bad("a static profile takes no token_url, auth or scopes")
		}
		if len(p.Place) == 0 {
			bad("place must say where the key goes")
		}
	case "oauth2":
		base, path, err := tokenURL(j.TokenURL)
		if err != nil {
			bad("token_url %v", err)
		}
		p.Hosts = append(p.Hosts, Host{Role: tokenRole, Base: base}) // nothing passes through it
		p.TokenEndpoint, p.Grant = &Service{Role: tokenRole, Path: path}, GrantClient
		switch j.Auth {
		case "", "basic":
		case "body":
			p.InBody = true
		default:
			bad(`auth must be "body" or "basic"`)
		}
		p.TokenPlace, p.Place = p.Place, nil
		if len(p.TokenPlace) == 0 {
			p.TokenPlace = []Placement{{In: InHeader, Name: "Authorization", Template: "Bearer {}"}}
		}
	default:
		bad(`credential must be "static" or "oauth2"`)
	}
	for _, s := range j.Strip {
		if s == "" || strings.ContainsAny(s, "&=#? ") {
			bad("strip: %q is not a parameter name", s)
		}
	}
	p.Strip = j.Strip
	for _, h := range j.Relay {
		if !validHeader(h) {
			bad("relay: %q is not a header name", h)
		}
	}
	p.Pass = j.Relay
	switch {
	case j.KeyLifetimeDays < 0 || j.KeyLifetimeDays > 3660:
		bad("key_lifetime_days must be between 1 and 3660")
	case j.KeyLifetimeDays > 0 && j.Credential != "static":
		bad("key_lifetime_days belongs to a static profile")
	}
	p.KeyLifetime = time.Duration(j.KeyLifetimeDays) * 24 * time.Hour
	if j.NotLicensed != 0 && (j.NotLicensed < 400 || j.NotLicensed > 499 || j.NotLicensed == 429) {
		bad("not_licensed must be a 4xx status other than 429")
	}
	return p, errors.Join(errs...)
}

// tokenRole is the host role of an oauth2 profile's token endpoint.
const tokenRole = "token"

func validRole(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

func validHeader(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// hostBase checks a host's URL: http(s)://host[:port], nothing else.
func hostBase(v string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(v, "/"))
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return "", errors.New("must be https://host[:port]")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Path != "" || u.ForceQuery:
		return "", errors.New("must be scheme://host[:port] with nothing else (no user info, path, query or fragment)")
	}
	return u.Scheme + "://" + u.Host, nil
}

// tokenURL splits an oauth2 profile's token URL into its host and path.
func tokenURL(v string) (base, path string, err error) {
	u, perr := url.Parse(v)
	if perr != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", errors.New("must be an https:// (or http://) URL without user info, query or fragment")
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u.Scheme + "://" + u.Host, u.EscapedPath(), nil
}

// entry reads "role:/path?query" against hosts.
func entry(v string, hosts map[string]hostJSON) (Service, error) {
	role, rest, ok := strings.Cut(v, ":")
	if !ok || !strings.HasPrefix(rest, "/") {
		return Service{}, errors.New(`must be "role:/path?query", the role one of hosts`)
	}
	h, ok := hosts[role]
	if !ok {
		return Service{}, fmt.Errorf("names host role %q, which hosts does not", role)
	}
	path, query, _ := strings.Cut(rest, "?")
	allowed := make([]string, len(h.Paths))
	for i, a := range h.Paths {
		allowed[i] = strings.TrimSuffix(a, "/")
	}
	if _, ok := PassPath(path, allowed); !ok {
		return Service{}, fmt.Errorf("path must lie below one of hosts.%s.paths", role)
	}
	if _, err := url.ParseQuery(query); err != nil {
		return Service{}, errors.New("has a query that does not parse")
	}
	return Service{Role: role, Path: path, Query: query}, nil
}

func (j placeJSON) placement() (Placement, error) {
	set := 0
	for _, v := range []string{j.Query, j.Header, j.Path} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return Placement{}, errors.New(`must have exactly one of "query", "header" or "path"`)
	}
	switch {
	case j.Query != "":
		if strings.ContainsAny(j.Query, "&=#? /") || j.Template != "" || j.After != "" {
			return Placement{}, errors.New("query must be a parameter name, alone")
		}
		return Placement{In: InQuery, Name: j.Query}, nil
	case j.Header != "":
		if !validHeader(j.Header) || j.After != "" {
			return Placement{}, errors.New("header must be a header name, with an optional template")
		}
		if j.Template != "" && strings.Count(j.Template, "{}") != 1 {
			return Placement{}, errors.New(`template must hold "{}" once, where the credential goes`)
		}
		return Placement{In: InHeader, Name: j.Header, Template: j.Template}, nil
	default:
		if strings.ContainsAny(j.Path, "/?#%") || j.Template != "" || !strings.HasPrefix(j.After, "/") || strings.HasSuffix(j.After, "/") {
			return Placement{}, errors.New(`path must be a segment name, with "after" the path prefix it follows (starting with /, not ending with it)`)
		}
		return Placement{In: InPath, Name: j.Path, After: j.After}, nil
	}
}
