package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/provider"
)

// MaxRecordSize is the largest record ParseRecord reads, in bytes. Key
// Vault secrets are at most 25 KB.
const MaxRecordSize = 64 << 10

// maxValue bounds each client id and secret, as credential.MaxSegment
// bounds the encoded ones in credential URLs.
const maxValue = 256

// recordJSON is the original HexProx's layout, with the new optional
// fields after it. Field order is the order EncodeRecord writes.
type recordJSON struct {
	Count         int       `json:"count"`
	Sets          []setJSON `json:"sets"`
	Org           string    `json:"org"`
	Contact       string    `json:"contact"`
	Note          string    `json:"note,omitempty"`
	Origins       []string  `json:"origins,omitempty"`
	Rate          float64   `json:"rate,omitempty"`
	Burst         int       `json:"burst,omitempty"`
	DailyRequests int64     `json:"daily_requests,omitempty"`
	Redirect      bool      `json:"redirect,omitempty"`
	Endpoint      string    `json:"endpoint,omitempty"`
	Replaces      string    `json:"replaces,omitempty"`
	ReplacedBy    string    `json:"replaced_by,omitempty"`
	Enabled       *bool     `json:"enabled,omitempty"`
	NotBefore     string    `json:"not_before,omitempty"`
	Expires       string    `json:"expires,omitempty"`
	Created       string    `json:"created,omitempty"`
}

// setJSON is one credential set: a Hexagon client id and secret (the
// original's layout, no provider), or a static key of another provider.
type setJSON struct {
	Provider     string `json:"provider,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	Key          string `json:"key,omitempty"`
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	// KeyExpires is when the provider ends Key (RFC 3339, or a date
	// read as its midnight UTC).
	KeyExpires string `json:"key_expires,omitempty"`
}

// hexagonSet reads set i of a Hexagon record: a client_id and
// client_secret, nothing else.
func (s setJSON) hexagonSet(i int) (credential.Credential, error) {
	if s.Key != "" || s.Username != "" || s.Password != "" || s.KeyExpires != "" {
		return credential.Credential{}, problem("sets[%d] is Hexagon's: a client_id and client_secret, nothing else", i)
	}
	if err := checkMembers(i, member{"client_id", s.ClientID}, member{"client_secret", s.ClientSecret}); err != nil {
		return credential.Credential{}, err
	}
	return credential.Credential{ID: s.ClientID, Secret: s.ClientSecret}, nil
}

// providerSet reads set i of provider name: a key (with its optional
// end), a username and password, or a client_id and client_secret,
// exactly one of them. A built-in provider's sets must be of a form it
// takes; an operator's provider's are checked against its profile where
// the profile is known (the server, the CLI).
func (s setJSON) providerSet(i int, name string) (credential.Credential, error) {
	forms := 0
	for _, has := range []bool{s.Key != "", s.Username != "" || s.Password != "", s.ClientID != "" || s.ClientSecret != ""} {
		if has {
			forms++
		}
	}
	if forms != 1 {
		return credential.Credential{}, problem("sets[%d] of %s must be one of: a key; a username and password; a client_id and client_secret", i, name)
	}
	if s.Key == "" && s.KeyExpires != "" {
		return credential.Credential{}, problem("sets[%d].key_expires belongs to a key", i)
	}
	var c credential.Credential
	var members []member
	switch {
	case s.Key != "":
		c = credential.Credential{Provider: name, Secret: s.Key}
		members = []member{{"key", s.Key}}
	case s.Username != "" || s.Password != "":
		c = credential.Credential{Provider: name, ID: s.Username, Secret: s.Password}
		members = []member{{"username", s.Username}, {"password", s.Password}}
	default:
		c = credential.Credential{Provider: name, ID: s.ClientID, Secret: s.ClientSecret, Client: true}
		members = []member{{"client_id", s.ClientID}, {"client_secret", s.ClientSecret}}
	}
	if p, err := provider.Builtin(name, nil); err == nil && !p.Takes(c) {
		return credential.Credential{}, problem("sets[%d] is %s's: %s, not %s", i, name, takes(p), form(c))
	}
	if err := checkMembers(i, members...); err != nil {
		return credential.Credential{}, err
	}
	if s.KeyExpires != "" {
		t, err := parseKeyExpires(s.KeyExpires)
		if err != nil {
			return credential.Credential{}, problem("sets[%d].key_expires must be an RFC 3339 time or a date (YYYY-MM-DD)", i)
		}
		c.Expires = t
	}
	return c, nil
}

// member is a set's member, by its JSON name, for checkMembers.
type member struct{ name, v string }

// checkMembers checks the values of set i's members (checkValue).
func checkMembers(i int, members ...member) error {
	for _, m := range members {
		if err := checkValue(m.v); err != nil {
			return problem("sets[%d].%s %s", i, m.name, err)
		}
	}
	return nil
}

// form names set c's form, in a record's words.
func form(c credential.Credential) string {
	switch {
	case c.IsKey():
		return "a key"
	case c.Client:
		return "a client_id and client_secret"
	}
	return "a username and password"
}

// takes names the forms of set profile p takes, in a record's words.
func takes(p *provider.Profile) string {
	var w []string
	if p.TakesKeys() {
		w = append(w, "a key")
	}
	if p.TakesLogins() {
		w = append(w, "a username and password")
	}
	if p.TakesClients() {
		w = append(w, "a client_id and client_secret")
	}
	return strings.Join(w, " or ")
}

// parseKeyExpires reads a key's end: RFC 3339, or a date, its midnight UTC.
func parseKeyExpires(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, v)
}

// RecordFields are the JSON member names EncodeRecord may write; a store
// that keeps members it does not know (the file store) replaces exactly
// these.
var RecordFields = []string{"count", "sets", "org", "contact", "note", "origins", "rate",
	"burst", "daily_requests", "redirect", "endpoint", "replaces", "replaced_by", "enabled", "not_before", "expires", "created"}

// ParseRecord decodes a record in the original HexProx's layout:
//
//	{"count": N, "sets": [{"client_id": "…", "client_secret": "…"}, …],
//	 "org": "…", "contact": "…"}
//
// with the optional members note, origins (a list of ALLOWED_ORIGINS
// entries), rate, burst, daily_requests, redirect (see Record.Redirect),
// endpoint ("streaming", the default, or "orders"), replaces and
// replaced_by (key prefixes, written by rotation), and, for stores that keep the lifecycle in the record (the file store),
// enabled (default true), not_before, expires and created (RFC 3339). Unknown members are
// ignored. count is ignored too: the original may have written one that
// disagrees with its sets, and len(sets) is what counts.
//
// A record without sets, or with an empty, over-long or control-character
// client id or secret, is refused. Errors name the member and set index,
// never a value.
func ParseRecord(data []byte) (Record, error) {
	if len(data) > MaxRecordSize {
		return Record{}, problem("record is larger than %d bytes", MaxRecordSize)
	}
	var j recordJSON
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&j); err != nil {
		return Record{}, decodeError(data, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return Record{}, problemAt(data, d.InputOffset(), "record has data after its closing brace")
	}
	return j.record()
}

func (j *recordJSON) record() (Record, error) {
	r := Record{
		Org: j.Org, Contact: j.Contact, Note: j.Note, Origins: j.Origins,
		Enabled: j.Enabled == nil || *j.Enabled,
		Rate:    j.Rate, Burst: j.Burst, DailyRequests: j.DailyRequests, Redirect: j.Redirect,
		Replaces: j.Replaces, ReplacedBy: j.ReplacedBy,
	}
	if len(j.Sets) == 0 {
		return Record{}, problem("record has no credential sets")
	}
	r.Sets = make([]credential.Credential, len(j.Sets))
	for i, s := range j.Sets {
		name := strings.ToLower(strings.TrimSpace(s.Provider))
		if name == provider.Hexagon {
			name = ""
		}
		switch {
		case name != "" && !provider.ValidName(name):
			return Record{}, problem("sets[%d].provider is not a provider's name (built in are %s)", i, strings.Join(provider.Names(), ", "))
		case i > 0 && name != r.Provider:
			return Record{}, problem("sets[%d].provider differs from sets[0]'s: all of a key's sets name one provider", i)
		}
		r.Provider = name
		var err error
		if name == "" {
			r.Sets[i], err = s.hexagonSet(i)
		} else {
			r.Sets[i], err = s.providerSet(i, name)
		}
		if err != nil {
			return Record{}, err
		}
	}
	if r.Rate < 0 || r.Burst < 0 || r.DailyRequests < 0 {
		return Record{}, problem("rate, burst and daily_requests must not be negative")
	}
	var err error
	if r.Endpoint, err = ParseEndpoint(j.Endpoint); err != nil {
		return Record{}, problem("endpoint must be \"streaming\" or \"orders\"")
	}
	if r.Provider != "" && (r.Redirect || r.Endpoint != Streaming) {
		// Another provider's tiles always go through the proxy (a key in
		// a redirect would outlive the key), and endpoint names Hexagon's
		// service families.
		return Record{}, problem("redirect and endpoint are for Hexagon's sets, not %s's", r.Provider)
	}
	for _, v := range []struct{ name, v string }{{"replaces", r.Replaces}, {"replaced_by", r.ReplacedBy}} {
		if v.v != "" && Check(v.v) != nil {
			return Record{}, problem("%s is not a key prefix", v.name)
		}
	}
	for i, o := range r.Origins {
		if o == "" || strings.IndexFunc(o, unicode.IsSpace) >= 0 || strings.Contains(o, ",") {
			return Record{}, problem("origins[%d] is empty or holds a space or comma", i)
		}
	}
	for _, t := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"not_before", j.NotBefore, &r.NotBefore}, {"expires", j.Expires, &r.Expires}, {"created", j.Created, &r.Created}} {
		if t.in == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.in)
		if err != nil {
			return Record{}, problem("%s is not an RFC 3339 time such as 2030-01-31T00:00:00Z", t.name)
		}
		// Kept as written back: whole seconds, a year that UTC can spell.
		if y := v.UTC().Year(); y < 1 || y > 9999 || v.Nanosecond() != 0 {
			return Record{}, problem("%s must be a time between the years 0001 and 9999 in whole seconds", t.name)
		}
		*t.out = v
	}
	return r, nil
}

func checkValue(v string) error {
	switch {
	case v == "":
		return errors.New("is empty")
	case len(v) > maxValue:
		return fmt.Errorf("is longer than %d bytes", maxValue)
	case !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0:
		return errors.New("holds control characters or is not UTF-8")
	}
	return nil
}

// A RecordError is a record that ParseRecord refuses. It names the member
// and position, never a value.
type RecordError struct {
	Problem string
	// Offset is the byte offset of the problem in the record, or -1 when
	// the problem is not at one place (a missing member, a bad value
	// found after decoding). Line and Column are Offset's, 1-based.
	Offset       int64
	Line, Column int
}

func (e *RecordError) Error() string {
	if e.Offset < 0 {
		return "keys: " + e.Problem
	}
	return fmt.Sprintf("keys: %s (line %d, column %d)", e.Problem, e.Line, e.Column)
}

func problem(format string, args ...any) error {
	return &RecordError{Problem: fmt.Sprintf(format, args...), Offset: -1}
}

func problemAt(data []byte, off int64, format string, args ...any) error {
	off = min(max(off, 0), int64(len(data)))
	l, c := Position(data, off)
	return &RecordError{Problem: fmt.Sprintf(format, args...), Offset: off, Line: l, Column: c}
}

// decodeError describes a JSON error by position and member name only:
// encoding/json's own messages can quote the input (a character of a
// secret, a number).
func decodeError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return problemAt(data, syn.Offset-1, "record is not valid JSON") // Offset counts the bad byte
	case errors.As(err, &typ):
		if typ.Field == "" {
			return problemAt(data, 0, "record is not a JSON object")
		}
		return problemAt(data, typ.Offset, "record member %q must be %s", typ.Field, kindName(typ.Type.Kind()))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return problem("record is empty or cut short")
	}
	return problem("record is not valid JSON")
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return "true or false" // only enabled is a pointer
	}
	return "of another type"
}

// Position returns the 1-based line and column of byte offset off in data.
func Position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = 1 + len(before) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

// EncodeRecord writes r in the original HexProx's layout, with count set
// to len(Sets) for the original's sake, the optional members only when
// set, and the lifecycle members (enabled only when false, not_before,
// expires, created) only when set. A store that keeps the lifecycle
// elsewhere (Key Vault's secret attributes) clears those fields of r
// before encoding. It refuses what ParseRecord would refuse, so a record
// written can always be read back.
func EncodeRecord(r Record) ([]byte, error) {
	j := recordJSON{
		Count: len(r.Sets), Org: r.Org, Contact: r.Contact, Note: r.Note, Origins: r.Origins,
		Rate: r.Rate, Burst: r.Burst, DailyRequests: r.DailyRequests, Redirect: r.Redirect,
		Replaces: r.Replaces, ReplacedBy: r.ReplacedBy,
	}
	if r.Endpoint != Streaming {
		j.Endpoint = r.Endpoint.String()
	}
	j.Sets = make([]setJSON, len(r.Sets))
	for i, s := range r.Sets {
		switch {
		case r.Provider == "":
			j.Sets[i] = setJSON{ClientID: s.ID, ClientSecret: s.Secret}
		case s.ID == "":
			j.Sets[i] = setJSON{Provider: r.Provider, Key: s.Secret}
			if !s.Expires.IsZero() {
				j.Sets[i].KeyExpires = s.Expires.UTC().Format(time.RFC3339)
			}
		case s.Client:
			j.Sets[i] = setJSON{Provider: r.Provider, ClientID: s.ID, ClientSecret: s.Secret}
		default:
			j.Sets[i] = setJSON{Provider: r.Provider, Username: s.ID, Password: s.Secret}
		}
	}
	if !r.Enabled {
		f := false
		j.Enabled = &f
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	j.NotBefore, j.Expires, j.Created = stamp(r.NotBefore), stamp(r.Expires), stamp(r.Created)
	if _, err := j.record(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	if err := e.Encode(j); err != nil {
		return nil, fmt.Errorf("keys: encoding a record: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Status is where a record stands in its lifecycle.
type Status int

const (
	Active      Status = iota // serves
	Revoked                   // Enabled is false
	Expired                   // at or after Expires
	NotYetValid               // before NotBefore
)

// String reads well in a sentence and a table: "active", "revoked",
// "expired", "not yet valid".
func (s Status) String() string {
	switch s {
	case Active:
		return "active"
	case Revoked:
		return "revoked"
	case Expired:
		return "expired"
	case NotYetValid:
		return "not yet valid"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Status returns r's lifecycle status at now. Revoked wins over Expired,
// and Expired over NotYetValid.
func (r Record) Status(now time.Time) Status {
	switch {
	case !r.Enabled:
		return Revoked
	case !r.Expires.IsZero() && !now.Before(r.Expires):
		return Expired
	case !r.NotBefore.IsZero() && now.Before(r.NotBefore):
		return NotYetValid
	}
	return Active
}
