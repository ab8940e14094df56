package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/storetest"
	"github.com/hexprox/hexprox/internal/testclock"
)

func newFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keys.Store {
		path := filepath.Join(t.TempDir(), "keys.json")
		if err := Init(path); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

const originalStyle = `{
  "a1b2c3d4-0000-4e5f-8a9b-abcdefabcdef": {
    "count": 2,
    "sets": [
        {"client_id": "id-one", "client_secret": "secret-one"}
    ],
    "org": "Org name",
    "contact": "Contact name",
    "future_member": {"kept": true}
  },
  "hxpk-revoked": {"sets": [{"client_id": "id-two", "client_secret": "secret-two"}], "org": "Gone", "enabled": false,
    "expires": "2030-01-01T00:00:00Z", "not_before": "2020-01-01T00:00:00+02:00", "origins": ["https://*.example.gov"]}
}
`

func TestReadsHandWrittenFile(t *testing.T) {
	ctx := context.Background()
	s, err := Open(newFile(t, originalStyle))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, "a1b2c3d4-0000-4e5f-8a9b-abcdefabcdef")
	if err != nil {
		t.Fatal(err)
	}
	if r.Org != "Org name" || len(r.Sets) != 1 || r.Sets[0].Secret != "secret-one" || !r.Enabled {
		t.Fatalf("got %+v", r)
	}
	r, err = s.Get(ctx, "hxpk-revoked")
	if err != nil {
		t.Fatal(err)
	}
	if r.Enabled || r.Status(time.Now()) != keys.Revoked || r.NotBefore.UTC() != time.Date(2019, 12, 31, 22, 0, 0, 0, time.UTC) ||
		len(r.Origins) != 1 || r.Origins[0] != "https://*.example.gov" {
		t.Fatalf("got %+v", r)
	}
	if _, err := s.Get(ctx, "hxpk-unknown"); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := s.Get(ctx, "bad key"); !errors.Is(err, keys.ErrSyntax) {
		t.Fatalf("bad syntax: %v", err)
	}
	// The caller's copy is its own.
	r.Origins[0] = "changed"
	if again, _ := s.Get(ctx, "hxpk-revoked"); again.Origins[0] != "https://*.example.gov" {
		t.Fatal("a returned record shares memory with the store")
	}
}

func TestWritesKeepUnknownMembersAndMode(t *testing.T) {
	ctx := context.Background()
	path := newFile(t, originalStyle)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const key = "a1b2c3d4-0000-4e5f-8a9b-abcdefabcdef"
	r, _ := s.Get(ctx, key)
	r.Contact = "new contact"
	r.Sets = append(r.Sets, credential.Credential{ID: "id-three", Secret: "secret-three"})
	if err := s.Update(ctx, key, r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("written file is not JSON: %v\n%s", err, data)
	}
	rec := file[key]
	if string(rec["future_member"]) != `{"kept":true}` && !strings.Contains(string(rec["future_member"]), `"kept": true`) {
		t.Fatalf("unknown member lost: %s", data)
	}
	if string(rec["count"]) != "2" || string(rec["contact"]) != `"new contact"` {
		t.Fatalf("count must be len(sets) (2) and contact replaced: %s", data)
	}
	if _, ok := file["hxpk-revoked"]["enabled"]; !ok {
		t.Fatalf("the other record was rewritten: %s", data)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
	// And the original HexProx could read what we wrote.
	var orig struct {
		Count int `json:"count"`
		Sets  []struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		} `json:"sets"`
	}
	json.Unmarshal(file[key]["count"], &orig.Count)
	json.Unmarshal(file[key]["sets"], &orig.Sets)
	if orig.Count != len(orig.Sets) || orig.Sets[1].ClientSecret != "secret-three" {
		t.Fatalf("the original's view: %+v", orig)
	}
	// A second store on the same file sees the update.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.Get(ctx, key); got.Contact != "new contact" || len(got.Sets) != 2 {
		t.Fatalf("reopened: %+v", got)
	}
}

func TestCreateStampsCreated(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC))
	s, err := Open(newFile(t, "{}"), WithNow(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	rec := keys.Record{Org: "o", Enabled: true, Sets: []credential.Credential{{ID: "i", Secret: "s"}}}
	if err := s.Create(ctx, "hxpk-a", rec); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "hxpk-a")
	if !got.Created.Equal(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)) {
		t.Fatalf("created %v", got.Created)
	}
	clock.Advance(time.Hour)
	rec.Org = "renamed"
	if err := s.Update(ctx, "hxpk-a", rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "hxpk-a"); !got.Created.Equal(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)) {
		t.Fatalf("Update with a zero Created must keep the first: %v", got.Created)
	}
}

// TestReloadsWhenFileChanges edits the file behind the store's back, the
// way an operator or a mounted secret does.
func TestReloadsWhenFileChanges(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(time.Now())
	path := newFile(t, originalStyle)
	s, err := Open(path, WithNow(clock.Now), WithCheckEvery(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	const key = "a1b2c3d4-0000-4e5f-8a9b-abcdefabcdef"
	replaced := strings.Replace(originalStyle, `"org": "Org name"`, `"org": "Org renamed", "enabled": false`, 1)
	if err := os.WriteFile(path, []byte(replaced), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(ctx, key); r.Org != "Org name" {
		t.Fatalf("re-read before CheckEvery passed: %+v", r.Org)
	}
	clock.Advance(time.Second)
	r, err := s.Get(ctx, key)
	if err != nil || r.Org != "Org renamed" || r.Enabled {
		t.Fatalf("after the change: %q enabled %v, %v", r.Org, r.Enabled, err)
	}

	// A broken edit: the store says it is unavailable (so the cache in
	// front serves what it knows), naming the file and line; the fixed
	// file is read again.
	broken := strings.Replace(replaced, `"client_secret": "secret-one"}`, `"client_secret": "secret-one",}`, 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	_, err = s.Get(ctx, key)
	if !errors.Is(err, keys.ErrUnavailable) || !strings.Contains(err.Error(), path+":5:") {
		t.Fatalf("broken file: %v; want ErrUnavailable naming %s:5", err, path)
	}
	if strings.Contains(err.Error(), "secret-one") || strings.Contains(err.Error(), key) {
		t.Fatalf("error carries a secret: %v", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("List of a broken file: %v", err)
	}
	if err := os.WriteFile(path, []byte(originalStyle), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if r, err := s.Get(ctx, key); err != nil || r.Org != "Org name" {
		t.Fatalf("fixed file: %q %v", r.Org, err)
	}

	// Removed keys go.
	if err := os.WriteFile(path, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if _, err := s.Get(ctx, key); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("removed key: %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"empty", "", " is empty"},
		{"array", `[{"sets": []}]`, ":1: a keys file is a JSON object"},
		{"bad key", "{\n\n  \"bad key!\": {\"sets\": [{\"client_id\": \"i\", \"client_secret\": \"Sup3rSecret\"}]}}", ":3: a key must be 1 to 112"},
		{"no sets", "{\n  \"hxpk-a\": {\"org\": \"o\",\n  \"sets\": []}}", ":2: key " + keys.Fingerprint("hxpk-a", "") + ": record has no credential sets"},
		{"empty secret", "{\"hxpk-a\": {\n\"sets\": [{\"client_id\": \"i\", \"client_secret\": \"\"}]}}", ":1: key " + keys.Fingerprint("hxpk-a", "") + ": sets[0].client_secret is empty"},
		{"secret a number", "{\"hxpk-a\": {\n\"sets\": [\n{\"client_id\": \"i\",\n \"client_secret\": 123456789}]}}", ":4: key " + keys.Fingerprint("hxpk-a", "") + `: record member "sets.client_secret" must be a string`},
		{"bad time", "{\"hxpk-a\": {\"sets\": [{\"client_id\": \"i\", \"client_secret\": \"Sup3rSecret\"}],\n \"expires\": \"next year\"}}", ":1: key " + keys.Fingerprint("hxpk-a", "") + ": expires is not an RFC 3339 time"},
		{"duplicate", "{\"hxpk-a\": {\"sets\": [{\"client_id\": \"i\", \"client_secret\": \"Sup3rSecret\"}]},\n\"hxpk-a\": {\"sets\": [{\"client_id\": \"i\", \"client_secret\": \"Sup3rSecret\"}]}}", ":2: key " + keys.Fingerprint("hxpk-a", "") + " is in the file twice (first on line 1, in any spelling)"},
		{"duplicate in another spelling", "{\"hxpk-Ab\": {\"sets\": [{\"client_id\": \"i\", \"client_secret\": \"Sup3rSecret\"}]},\n\"hxpk-aB\": {\"sets\": [{\"client_id\": \"i\", \"client_secret\": \"Sup3rSecret\"}]}}", ":2: key " + keys.Fingerprint("hxpk-ab", "") + " is in the file twice (first on line 1, in any spelling)"},
		{"syntax", "{\"hxpk-a\": {\"sets\": [{\"client_id\": \"i\", \"client_secret\": Sup3rSecret}]}}", ":1:56: not valid JSON"},
		{"cut short", "{\"hxpk-a\": {\"sets\": [{\"client_id\": \"i\", \"client_secret\": \"Sup3rSecret\"}]}", " is cut short"},
		{"trailing", "{}\n{}", ":2: data after the closing brace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := newFile(t, c.content)
			_, err := Open(path)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "keys file "+path+c.want) {
				t.Fatalf("error %q, want %q", err, c.want)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			for _, s := range []string{"Sup3r", "123456789", "hxpk-a\"", "bad key!"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q quotes %q", err, s)
				}
			}
		})
	}
}

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := Open(path); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("missing file: %v", err)
	}
	if err := Init(path); err != nil {
		t.Fatal(err)
	}
	if err := Init(path); err != nil {
		t.Fatal("Init of an existing file must leave it be: ", err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := s.List(context.Background()); err != nil || len(l) != 0 {
		t.Fatalf("new file: %v %v", l, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("Init made mode %v", fi.Mode().Perm())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(originalStyle))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"k": {"sets": [{"client_id": "i", "client_secret": "s"}], "enabled": "yes"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parse(data)
		if err != nil {
			return
		}
		for k, e := range entries {
			if keys.Check(k) != nil || len(e.rec.Sets) == 0 {
				t.Fatalf("parse accepted an invalid entry")
			}
			if _, err := keys.EncodeRecord(e.rec); err != nil {
				t.Fatalf("a parsed record does not encode: %v", err)
			}
		}
	})
}
