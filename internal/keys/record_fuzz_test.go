package keys

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// secretMark in a fuzzed document is replaced by the fuzzed secret, so the
// fuzzer decides where a secret value sits (a client secret, an org, a
// broken token, after the closing brace) and the test knows what must not
// come back in an error.
const secretMark = "$SECRET"

// secretLead starts every planted secret. No refusal's wording contains
// it, so an error that holds the secret must have quoted the input.
const secretLead = "Sx"

// recordErrorShape is every message ParseRecord may return, with numbers
// as \d+. The only variable parts are numbers and Go member names, so a
// message of this shape cannot carry a value of the input.
var recordErrorShape = regexp.MustCompile(`^keys: (` + strings.Join([]string{
	`record is larger than \d+ bytes`,
	`record has data after its closing brace`,
	`record is not valid JSON`,
	`record is not a JSON object`,
	`record member "[a-z_.]+" must be (a string|a list|an object|true or false|a whole number|a number|of another type)`,
	`record is empty or cut short`,
	`record has no credential sets`,
	`sets\[\d+\]\.client_(id|secret) (is empty|is longer than \d+ bytes|holds control characters or is not UTF-8)`,
	`rate, burst and daily_requests must not be negative`,
	`origins\[\d+\] is empty or holds a space or comma`,
	`(not_before|expires|created) is not an RFC 3339 time such as 2030-01-31T00:00:00Z`,
	`(not_before|expires|created) must be a time between the years 0001 and 9999 in whole seconds`,
}, "|") + `)( \(line \d+, column \d+\))?$`)

// FuzzParseRecord checks ParseRecord on any input: it never panics, its
// errors quote no value of the input (the planted secret, wherever it
// lands, and nothing outside the known messages), and every record it
// accepts encodes, parses back to the same record, and encodes to the
// same bytes again.
func FuzzParseRecord(f *testing.F) {
	for _, doc := range []string{
		originalRecord,
		`{"count":1,"sets":[{"client_id":"id","client_secret":"$SECRET"}],"org":"o","contact":"c"}`,
		`{"sets":[{"client_id":"$SECRET","client_secret":"s"}],"enabled":false,"expires":"2030-01-31T00:00:00Z","not_before":"2025-01-01T00:00:00+02:00","created":"2024-12-24T09:00:00Z"}`,
		`{"sets":[{"client_id":"i","client_secret":$SECRET}]}`,
		`{"sets":[{"client_id":"i","client_secret":"$SECRET` + "\n" + `"}]}`,
		`{"sets":[{"client_id":"i","client_secret":"s"}],"origins":["https://*.example.org","$SECRET"],"rate":2.5,"burst":10,"daily_requests":5000,"note":"n"}`,
		`{"sets":[{"client_id":"i","client_secret":"s"}],"expires":"$SECRET"}`,
		`{"sets":[{"client_id":"i","client_secret":"s"}]} $SECRET`,
		`{"sets":{"client_id":"i","client_secret":"$SECRET"}}`,
		`["$SECRET"]`,
		``,
	} {
		f.Add([]byte(doc), "3cr3t/+=?&value")
	}
	f.Fuzz(func(t *testing.T, doc []byte, secret string) {
		secret = secretLead + secret
		data := bytes.ReplaceAll(doc, []byte(secretMark), []byte(secret))
		r, err := ParseRecord(data)
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, secret) {
				t.Fatalf("the error quotes the secret: %q", msg)
			}
			if !recordErrorShape.MatchString(msg) {
				t.Fatalf("an error outside the known messages (it may quote the input): %q", msg)
			}
			return
		}
		if len(r.Sets) == 0 {
			t.Fatal("a record without sets was accepted")
		}
		out, err := EncodeRecord(r)
		if err != nil {
			t.Fatalf("an accepted record does not encode: %v", err)
		}
		back, err := ParseRecord(out)
		if err != nil {
			t.Fatalf("an encoded record does not parse: %v\n%s", err, out)
		}
		if !sameRecord(r, back) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, back)
		}
		again, err := EncodeRecord(back)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, out, again)
		}
	})
}

// sameRecord compares records as the keys' users see them: times as
// instants, empty and missing lists alike.
func sameRecord(a, b Record) bool {
	if a.Org != b.Org || a.Contact != b.Contact || a.Note != b.Note || a.Enabled != b.Enabled ||
		a.Rate != b.Rate || a.Burst != b.Burst || a.DailyRequests != b.DailyRequests ||
		!a.NotBefore.Equal(b.NotBefore) || !a.Expires.Equal(b.Expires) || !a.Created.Equal(b.Created) ||
		len(a.Sets) != len(b.Sets) || len(a.Origins) != len(b.Origins) {
		return false
	}
	for i := range a.Sets {
		if a.Sets[i] != b.Sets[i] {
			return false
		}
	}
	for i := range a.Origins {
		if a.Origins[i] != b.Origins[i] {
			return false
		}
	}
	return true
}

// The round trip keeps what a record may hold at its edges: times with
// offsets and fractions, the longest values, and non-ASCII text.
func TestRecordRoundTripEdges(t *testing.T) {
	long := strings.Repeat("ü", maxValue/2)
	for _, doc := range []string{
		`{"sets":[{"client_id":"i","client_secret":"s"}],"expires":"2030-01-31T23:30:00-08:00"}`,
		`{"sets":[{"client_id":"` + long + `","client_secret":"` + long + `"}],"org":"Zürich \u2028 GIS"}`,
		`{"sets":[{"client_id":"i","client_secret":"s"}],"origins":[]}`,
	} {
		r, err := ParseRecord([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		out, err := EncodeRecord(r)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		back, err := ParseRecord(out)
		if err != nil || !sameRecord(r, back) {
			t.Fatalf("%s: round trip gave %+v, %v", doc, back, err)
		}
	}
}
