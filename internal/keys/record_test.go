package keys

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
)

// originalRecord is the shape of the original HexProx's key_manager.py
// docstring, with fake values: the exact JSON its deployments hold in
// Key Vault today.
const originalRecord = `{
    "count": 3,
    "sets": [
        {"client_id": "id-one", "client_secret": "secret-one"},
        {"client_id": "id-two", "client_secret": "secret-two"},
        {"client_id": "id-three", "client_secret": "secret-three"}
    ],
    "org": "Org name",
    "contact": "Contact name"
}`

func TestParseOriginalRecord(t *testing.T) {
	r, err := ParseRecord([]byte(originalRecord))
	if err != nil {
		t.Fatal(err)
	}
	if r.Org != "Org name" || r.Contact != "Contact name" || !r.Enabled {
		t.Fatalf("got org %q contact %q enabled %v", r.Org, r.Contact, r.Enabled)
	}
	want := [][2]string{{"id-one", "secret-one"}, {"id-two", "secret-two"}, {"id-three", "secret-three"}}
	if len(r.Sets) != len(want) {
		t.Fatalf("%d sets, want %d", len(r.Sets), len(want))
	}
	for i, w := range want {
		if r.Sets[i].ID != w[0] || r.Sets[i].Secret != w[1] {
			t.Errorf("sets[%d] = %q, want client id %q and its secret", i, r.Sets[i].ID, w[0])
		}
	}
	if r.Status(time.Now()) != Active || !r.Expires.IsZero() || !r.NotBefore.IsZero() || r.Origins != nil {
		t.Fatalf("an original record has no bounds: %+v", r)
	}

	// Written back, the original can still read it: same members, and
	// count agreeing with the sets.
	out, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	var orig struct {
		Count int `json:"count"`
		Sets  []struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		} `json:"sets"`
		Org     string `json:"org"`
		Contact string `json:"contact"`
	}
	if err := json.Unmarshal(out, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Count != 3 || len(orig.Sets) != 3 || orig.Sets[2].ClientSecret != "secret-three" || orig.Org != "Org name" {
		t.Fatalf("re-encoded record does not read as the original's: %s", out)
	}
	var members map[string]any
	json.Unmarshal(out, &members)
	if len(members) != 4 {
		t.Fatalf("re-encoded original record gained members: %s", out)
	}
}

func TestCountDisagreesWithSets(t *testing.T) {
	for _, count := range []string{"0", "1", "7", `"three"`} {
		doc := strings.Replace(originalRecord, `"count": 3`, `"count": `+count, 1)
		r, err := ParseRecord([]byte(doc))
		if count == `"three"` {
			// A count of the wrong type is a broken record, not a disagreeing one.
			if err == nil {
				t.Fatal("count as a string was accepted")
			}
			continue
		}
		if err != nil || len(r.Sets) != 3 {
			t.Fatalf("count %s: %d sets, %v; len(sets) must win", count, len(r.Sets), err)
		}
		out, _ := EncodeRecord(r)
		if !strings.Contains(string(out), `"count": 3`) {
			t.Fatalf("count %s: written back as %s, want count 3", count, out)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	in := Record{
		Org: "Marin <GIS> & \"co\"", Contact: "gis@example.org", Note: "portal items",
		Origins: []string{"https://marin.maps.arcgis.com", "https://*.marin.gov"},
		Enabled: false,
		Rate:    2.5, Burst: 10, DailyRequests: 5000, Redirect: true,
		Endpoint: Orders, Replaces: "hxpk-AbCdE", ReplacedBy: "hxpk-12345",
		NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Expires:   time.Date(2026, 1, 1, 12, 30, 0, 0, time.FixedZone("PST", -8*3600)),
		Created:   time.Date(2024, 12, 24, 9, 0, 0, 0, time.UTC),
	}
	in.Sets = append(in.Sets, cred("a", "s-a"), cred("b", "s-b"))
	out, err := EncodeRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, member := range []string{`"enabled": false`, `"expires": "2026-01-01T20:30:00Z"`, `"not_before": "2025-01-01T00:00:00Z"`,
		`"daily_requests": 5000`, `"rate": 2.5`, `"burst": 10`, `"redirect": true`, `"endpoint": "orders"`, `"replaces": "hxpk-AbCdE"`, `"replaced_by": "hxpk-12345"`, `"created": "2024-12-24T09:00:00Z"`, `"Marin <GIS> & \"co\""`} {
		if !strings.Contains(string(out), member) {
			t.Errorf("encoded record lacks %s:\n%s", member, out)
		}
	}
	got, err := ParseRecord(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Org != in.Org || got.Note != in.Note || got.Enabled || got.Rate != 2.5 || got.Burst != 10 || got.DailyRequests != 5000 || !got.Redirect ||
		got.Endpoint != Orders || got.Replaces != in.Replaces || got.ReplacedBy != in.ReplacedBy ||
		!got.Expires.Equal(in.Expires) || !got.NotBefore.Equal(in.NotBefore) || !got.Created.Equal(in.Created) ||
		len(got.Origins) != 2 || got.Origins[1] != "https://*.marin.gov" || len(got.Sets) != 2 || got.Sets[1].Secret != "s-b" {
		t.Fatalf("round trip: got %+v", got)
	}
}

func TestEndpointAndRotationLinks(t *testing.T) {
	const sets = `"sets":[{"client_id":"i","client_secret":"s"}]`
	for doc, want := range map[string]Endpoint{
		`{` + sets + `}`:                        Streaming, // the original's records
		`{` + sets + `,"endpoint":"streaming"}`: Streaming,
		`{` + sets + `,"endpoint":"ORDERS"}`:    Orders,
	} {
		r, err := ParseRecord([]byte(doc))
		if err != nil || r.Endpoint != want {
			t.Errorf("%s: endpoint %v, %v; want %v", doc, r.Endpoint, err, want)
		}
	}
	for _, doc := range []string{
		`{` + sets + `,"endpoint":"wholesale"}`,
		`{` + sets + `,"replaces":"not a key"}`,
		`{` + sets + `,"replaced_by":"hxpk/../x"}`,
	} {
		if _, err := ParseRecord([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", doc)
		}
	}
	// A streaming record is written as the original wrote it: no endpoint member.
	out, err := EncodeRecord(Record{Enabled: true, Sets: []credential.Credential{cred("i", "s")}})
	if err != nil || strings.Contains(string(out), "endpoint") {
		t.Fatalf("%s, %v", out, err)
	}
}

func TestEnabledDefault(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"sets":[{"client_id":"i","client_secret":"s"}]}`:                  true,
		`{"sets":[{"client_id":"i","client_secret":"s"}],"enabled":true}`:   true,
		`{"sets":[{"client_id":"i","client_secret":"s"}],"enabled":false}`:  false,
		`{"sets":[{"client_id":"i","client_secret":"s"}],"enabled":null}`:   true,
		`{"sets":[{"client_id":"i","client_secret":"s"}],"future":{"x":1}}`: true,
	} {
		r, err := ParseRecord([]byte(doc))
		if err != nil || r.Enabled != want {
			t.Errorf("%s: enabled %v, %v; want %v", doc, r.Enabled, err, want)
		}
	}
}

// TestParseErrorsNameNoSecret checks every refusal names what is wrong
// and never quotes a value.
func TestParseErrorsNameNoSecret(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`{"count":1,"sets":[],"org":"o"}`, "no credential sets"},
		{`{"count":1,"org":"o"}`, "no credential sets"},
		{`{"sets":[{"client_id":"i","client_secret":""}]}`, "sets[0].client_secret is empty"},
		{`{"sets":[{"client_id":"i","client_secret":"x"},{"client_id":"","client_secret":"Sup3rSecretValue"}]}`, "sets[1].client_id is empty"},
		{`{"sets":[{"client_id":"i","client_secret":"Sup3rSecretValue\n"}]}`, "sets[0].client_secret holds control characters"},
		{`{"sets":[{"client_id":"i","client_secret":"` + strings.Repeat("S", 300) + `"}]}`, "sets[0].client_secret is longer than 256"},
		{`{"sets":[{"client_id":"i","client_secret":Sup3rSecretValue}]}`, "not valid JSON (line 1, column 43)"},
		{"{\n\"sets\": [{\"client_id\": \"i\",\n \"client_secret\": 12345}]}", `"sets.client_secret" must be a string (line 3, `},
		{`{"sets":[{"client_id":"i","client_secret":"Sup3rSecretValue"}],"expires":"tomorrow"}`, "expires is not an RFC 3339 time"},
		{`{"sets":[{"client_id":"i","client_secret":"Sup3rSecretValue"}],"origins":["https://a.example, https://b.example"]}`, "origins[0]"},
		{`{"sets":[{"client_id":"i","client_secret":"Sup3rSecretValue"}],"rate":-1}`, "must not be negative"},
		{`{"sets":[{"client_id":"i","client_secret":"Sup3rSecretValue"}]} {"x":1}`, "data after"},
		{`["Sup3rSecretValue"]`, "not a JSON object"},
		{``, "empty or cut short"},
		{`{"sets":[{"client_id":"i","client_secret":"Sup3rSecretVal`, "cut short"},
	}
	for _, c := range cases {
		_, err := ParseRecord([]byte(c.doc))
		if err == nil {
			t.Errorf("%q: accepted", c.doc)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q, want it to say %q", c.doc, err, c.want)
		}
		if strings.Contains(err.Error(), "Sup3r") || strings.Contains(err.Error(), "SSSS") || strings.Contains(err.Error(), "12345") {
			t.Errorf("%q: the error quotes a secret: %q", c.doc, err)
		}
	}
}

func TestEncodeRefusesWhatParseRefuses(t *testing.T) {
	if _, err := EncodeRecord(Record{Org: "o", Enabled: true}); err == nil {
		t.Fatal("a record without sets was encoded")
	}
	r := Record{Enabled: true}
	r.Sets = append(r.Sets, cred("id", ""))
	if _, err := EncodeRecord(r); err == nil || !strings.Contains(err.Error(), "sets[0].client_secret is empty") {
		t.Fatalf("an empty secret: %v", err)
	}
}

func TestStatus(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		r    Record
		want Status
		str  string
	}{
		{Record{Enabled: true}, Active, "active"},
		{Record{Enabled: false}, Revoked, "revoked"},
		{Record{Enabled: false, Expires: now.Add(-time.Hour)}, Revoked, "revoked"},
		{Record{Enabled: true, Expires: now}, Expired, "expired"},
		{Record{Enabled: true, Expires: now.Add(time.Second)}, Active, "active"},
		{Record{Enabled: true, NotBefore: now.Add(time.Second)}, NotYetValid, "not yet valid"},
		{Record{Enabled: true, NotBefore: now}, Active, "active"},
		{Record{Enabled: true, NotBefore: now.Add(time.Hour), Expires: now.Add(-time.Hour)}, Expired, "expired"},
	} {
		got := c.r.Status(now)
		if got != c.want || got.String() != c.str {
			t.Errorf("%+v: %v (%q), want %v (%q)", c.r, got, got.String(), c.want, c.str)
		}
	}
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncd\n\nef")
	for off, want := range map[int64][2]int{0: {1, 1}, 2: {1, 3}, 3: {2, 1}, 4: {2, 2}, 7: {4, 1}, 100: {4, 3}, -1: {1, 1}} {
		l, c := Position(data, off)
		if l != want[0] || c != want[1] {
			t.Errorf("Position(%d) = %d:%d, want %d:%d", off, l, c, want[0], want[1])
		}
	}
}

// The example record in testdata parses: it is what the docs show.
func TestTestdataRecord(t *testing.T) {
	b, err := os.ReadFile("testdata/original-record.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRecord(b); err != nil {
		t.Fatal(err)
	}
}

func cred(id, secret string) credential.Credential {
	return credential.Credential{ID: id, Secret: secret}
}

// A set names its provider; none is Hexagon's, as the original's records
// are. Another provider's set is a static key.
func TestProviderSets(t *testing.T) {
	r, err := ParseRecord([]byte(`{"sets":[{"provider":"Planet","key":"PLAK1"},{"provider":"planet","key":"PLAK2"}],"org":"o","contact":"c"}`))
	if err != nil || r.Provider != "planet" || len(r.Sets) != 2 || r.Sets[1] != (credential.Credential{Provider: "planet", Secret: "PLAK2"}) {
		t.Fatalf("%+v, %v", r, err)
	}
	out, err := EncodeRecord(r)
	if err != nil || !strings.Contains(string(out), `"provider": "planet"`) || !strings.Contains(string(out), `"key": "PLAK2"`) || strings.Contains(string(out), "client_id") {
		t.Fatalf("encoded:\n%s\n%v", out, err)
	}
	if back, err := ParseRecord(out); err != nil || back.Provider != "planet" || back.Sets[0].Secret != "PLAK1" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	v, err := ParseRecord([]byte(`{"sets":[{"provider":"vexcel","username":"u@x","password":"pw"}]}`))
	if err != nil || v.Sets[0] != (credential.Credential{Provider: "vexcel", ID: "u@x", Secret: "pw"}) {
		t.Fatalf("vexcel: %+v, %v", v, err)
	}
	if out, err := EncodeRecord(v); err != nil || !strings.Contains(string(out), `"username": "u@x"`) || !strings.Contains(string(out), `"password": "pw"`) {
		t.Fatalf("vexcel encoded:\n%s\n%v", out, err)
	}
	h, err := ParseRecord([]byte(`{"sets":[{"provider":"hexagon","client_id":"i","client_secret":"s"}]}`))
	if err != nil || h.Provider != "" {
		t.Fatalf("hexagon named: %+v, %v", h, err)
	}
	// Maxar takes keys, with their end, or a login; an operator's provider
	// (not built in) is read by the set's form, checked where its profile
	// is known.
	m, err := ParseRecord([]byte(`{"sets":[{"provider":"maxar","key":"MXK","key_expires":"2027-05-31"},{"provider":"maxar","username":"u","password":"p"}]}`))
	if want := time.Date(2027, 5, 31, 0, 0, 0, 0, time.UTC); err != nil || !m.Sets[0].IsKey() || !m.Sets[0].Expires.Equal(want) || m.Sets[1].IsKey() || m.Sets[1].ID != "u" {
		t.Fatalf("maxar: %+v, %v", m, err)
	}
	if out, err := EncodeRecord(m); err != nil || !strings.Contains(string(out), `"key_expires": "2027-05-31T00:00:00Z"`) || !strings.Contains(string(out), `"username": "u"`) {
		t.Fatalf("maxar encoded:\n%s\n%v", out, err)
	}
	o, err := ParseRecord([]byte(`{"sets":[{"provider":"acme","client_id":"i","client_secret":"s"}]}`))
	if err != nil || o.Provider != "acme" || o.Sets[0] != (credential.Credential{Provider: "acme", ID: "i", Secret: "s", Client: true}) {
		t.Fatalf("operator's provider: %+v, %v", o, err)
	}
	if out, err := EncodeRecord(o); err != nil || !strings.Contains(string(out), `"client_id": "i"`) || strings.Contains(string(out), "username") {
		t.Fatalf("operator's provider encoded:\n%s\n%v", out, err)
	}
	for doc, want := range map[string]string{
		`{"sets":[{"provider":"planet","key":"k"}],"redirect":true}`:                               "redirect and endpoint are for Hexagon's sets, not planet's",
		`{"sets":[{"provider":"maxar","key":"k"}],"endpoint":"orders"}`:                            "redirect and endpoint are for Hexagon's sets, not maxar's",
		`{"sets":[{"provider":"Acme Imagery","key":"k"}]}`:                                         "sets[0].provider is not a provider's name (built in are hexagon, maxar, nearmap, planet, vexcel)",
		`{"sets":[{"provider":"maxar","username":"u","password":"p","key_expires":"2027-01-01"}]}`: "sets[0].key_expires belongs to a key",
		`{"sets":[{"provider":"maxar","key":"k","key_expires":"soon"}]}`:                           "sets[0].key_expires must be",
		`{"sets":[{"provider":"planet","username":"u","password":"p"}]}`:                           "planet's: a key, not a username",
		`{"sets":[{"provider":"vexcel","key":"k"}]}`:                                               "vexcel's: a username and password, not a key",
		`{"sets":[{"provider":"acme","key":"k","username":"u"}]}`:                                  "must be one of",
		`{"sets":[{"provider":"planet","key":"k"},{"client_id":"i","client_secret":"s"}]}`:         "sets[1].provider differs",
		`{"sets":[{"provider":"planet","client_id":"i","client_secret":"s"}]}`:                     "not a client_id",
		`{"sets":[{"client_id":"i","client_secret":"s","key":"k"}]}`:                               "Hexagon's: a client_id and client_secret, nothing else",
		`{"sets":[{"provider":"nearmap","key":""}]}`:                                               "sets[0] of nearmap must be one of",
		`{"sets":[{"provider":"nearmap","key":"k\u0001"}]}`:                                        "sets[0].key",
	} {
		_, err := ParseRecord([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
		if err != nil && strings.Contains(err.Error(), `"k"`) {
			t.Errorf("the error quotes a value: %v", err)
		}
	}
}
