// Package filestore is the keys.Store kept in one JSON file (KEYS_FILE):
// an object mapping each key to its record, in the layout of
// keys.ParseRecord with the lifecycle members enabled (default true),
// not_before and expires (RFC 3339):
//
//	{
//	  "hxpk-…": {"count": 1, "sets": [{"client_id": "…", "client_secret": "…"}],
//	             "org": "Marin County", "contact": "gis@marin.example",
//	             "origins": ["https://marin.maps.arcgis.com"], "expires": "2026-12-31T00:00:00Z"}
//	}
//
// It is for local runs, self-hosting and mounted secrets (a Kubernetes
// secret, an Azure Files share). The file is re-read when its
// modification time, size or identity changes, checked at most once per
// DefaultCheckEvery (or WithCheckEvery) on reads. Writes (the admin CLI's) replace the file
// atomically with a 0600 file and keep members of a record they do not
// know.
package filestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hexprox/hexprox/internal/keys"
)

// DefaultCheckEvery is how often reads look at the file for changes.
const DefaultCheckEvery = time.Second

// MaxFileSize is the largest keys file read.
const MaxFileSize = 16 << 20

// Store is a keys.Store on a JSON file. It is safe for concurrent use
// within a process; two processes writing at once may lose one write
// (the admin CLI is run by one person at a time).
type Store struct {
	path       string
	checkEvery time.Duration
	now        func() time.Time

	mu      sync.Mutex
	entries map[string]entry
	stat    fs.FileInfo // of the file last read; nil when it did not exist
	checked time.Time   // when the file was last looked at
	loadErr error       // the last read's failure, while the file stays broken
}

type entry struct {
	rec     keys.Record
	raw     json.RawMessage // as in the file, to keep members we do not know
	version string          // a hash of raw, for Listing
}

// Option configures Open.
type Option func(*Store)

// WithCheckEvery sets how often reads look at the file for changes
// (DefaultCheckEvery when d <= 0). Writes always look first.
func WithCheckEvery(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.checkEvery = d
		}
	}
}

// Open reads the keys file at path. The file must exist and be valid
// (use Init to create an empty one); errors name the file and the line,
// and a key only by its fingerprint.
func Open(path string, opts ...Option) (*Store, error) {
	s := &Store{path: path, checkEvery: DefaultCheckEvery, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reload(true); err != nil {
		return nil, err
	}
	if s.stat == nil {
		return nil, fmt.Errorf("keys file %s: %w (create it with: handler keys new --file %s ...)", path, fs.ErrNotExist, path)
	}
	return s, nil
}

// Init creates an empty keys file ("{}", mode 0600) at path unless a file
// is there already.
func Init(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating keys file: %w", err)
	}
	_, err = f.WriteString("{}\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get implements keys.Store. While the file is broken (being edited by
// hand, say), Get returns keys.ErrUnavailable wrapping the file's problem,
// so that a cache in front keeps serving records it knows.
func (s *Store) Get(ctx context.Context, key string) (keys.Record, error) {
	if err := keys.Check(key); err != nil {
		return keys.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fresh(); err != nil {
		return keys.Record{}, err
	}
	e, ok := s.lookup(key)
	if !ok {
		return keys.Record{}, keys.ErrNotFound
	}
	return clone(e.rec), nil
}

// lookup finds key's entry whatever its case, as Key Vault finds a secret:
// the spelling in the file, or any other, names the same record. Callers
// hold s.mu.
func (s *Store) lookup(key string) (entry, bool) {
	if e, ok := s.entries[key]; ok {
		return e, true
	}
	for k, e := range s.entries {
		if strings.EqualFold(k, key) {
			return e, true
		}
	}
	return entry{}, false
}

// List implements keys.Store: every key, sorted by organisation then
// creation, with whole records.
func (s *Store) List(ctx context.Context) ([]keys.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fresh(); err != nil {
		return nil, err
	}
	out := make([]keys.Entry, 0, len(s.entries))
	for k, e := range s.entries {
		out = append(out, keys.Entry{Key: k, Record: clone(e.rec)})
	}
	slices.SortFunc(out, func(a, b keys.Entry) int {
		if a.Record.Org != b.Record.Org {
			if a.Record.Org < b.Record.Org {
				return -1
			}
			return 1
		}
		if c := a.Record.Created.Compare(b.Record.Created); c != 0 {
			return c
		}
		if a.Key < b.Key {
			return -1
		}
		return 1
	})
	return out, nil
}

// Listing implements keys.Lister: every key's lifecycle from its record,
// and as its version a hash of the record as the file holds it, taken
// when the file was read. It rereads the file only when it changed.
func (s *Store) Listing(ctx context.Context) (map[string]keys.Attrs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fresh(); err != nil {
		return nil, err
	}
	out := make(map[string]keys.Attrs, len(s.entries))
	for k, e := range s.entries {
		out[keys.Canonical(k)] = keys.Attrs{Enabled: e.rec.Enabled, NotBefore: e.rec.NotBefore, Expires: e.rec.Expires, Version: e.version}
	}
	return out, nil
}

// Create implements keys.Store. A zero r.Created is set to now.
func (s *Store) Create(ctx context.Context, key string, r keys.Record) error {
	if r.Created.IsZero() {
		r.Created = s.now().UTC().Truncate(time.Second)
	}
	return s.write(key, r, false)
}

// Update implements keys.Store: it replaces the whole record, keeping
// only JSON members that keys.RecordFields does not name.
func (s *Store) Update(ctx context.Context, key string, r keys.Record) error {
	return s.write(key, r, true)
}

func (s *Store) write(key string, r keys.Record, replace bool) error {
	if err := keys.Check(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reload(true); err != nil {
		return err
	}
	old, exists := s.entries[key]
	for k := range s.entries {
		if !exists && strings.EqualFold(k, key) {
			key, old, exists = k, s.entries[k], true // the file's spelling
		}
	}
	switch {
	case replace && !exists:
		return keys.ErrNotFound
	case !replace && exists:
		return keys.ErrExists
	}
	if replace && r.Created.IsZero() {
		r.Created = old.rec.Created
	}
	raw, err := keys.EncodeRecord(r)
	if err != nil {
		return err
	}
	if exists {
		if raw, err = keepUnknown(raw, old.raw); err != nil {
			return err
		}
	}
	next := make(map[string]json.RawMessage, len(s.entries)+1)
	for k, e := range s.entries {
		next[k] = e.raw
	}
	next[key] = raw
	if err := s.save(next); err != nil {
		return err
	}
	// Read back what was written, so memory and file agree exactly.
	return s.reload(true)
}

// keepUnknown returns rec (a compact or indented JSON object) with the
// members of old that keys.RecordFields does not name appended.
func keepUnknown(rec, old json.RawMessage) (json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(old, &members); err != nil {
		return rec, nil // cannot happen for a record that parsed
	}
	for _, f := range keys.RecordFields {
		delete(members, f)
	}
	if len(members) == 0 {
		return rec, nil
	}
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.Write(bytes.TrimRight(bytes.TrimSpace(rec), "}"))
	for _, n := range names {
		name, _ := json.Marshal(n)
		b.WriteString(",")
		b.Write(name)
		b.WriteString(":")
		b.Write(members[n])
	}
	b.WriteString("}")
	return b.Bytes(), nil
}

// save writes entries to a temporary file in the same directory and
// renames it over the file, so that readers see the old or the new file,
// never half of one.
func (s *Store) save(entries map[string]json.RawMessage) error {
	names := make([]string, 0, len(entries))
	for k := range entries {
		names = append(names, k)
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteString("{")
	for i, k := range names {
		if i > 0 {
			b.WriteString(",")
		}
		name, _ := json.Marshal(k)
		b.Write(name)
		b.WriteString(":")
		b.Write(entries[k])
	}
	b.WriteString("}")
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("keys file %s: encoding: %w", s.path, err)
	}
	out.WriteString("\n")

	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("keys file %s: %w", s.path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keys file %s: %w", s.path, err)
	}
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("keys file %s: writing: %w", s.path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keys file %s: writing: %w", s.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keys file %s: writing: %w", s.path, err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("keys file %s: %w", s.path, err)
	}
	return nil
}

// fresh re-reads the file if the check interval has passed and it changed.
// It returns the file's problem, wrapped in keys.ErrUnavailable, while the
// file is broken.
func (s *Store) fresh() error {
	if now := s.now(); now.Sub(s.checked) >= s.checkEvery || now.Before(s.checked) {
		if err := s.reload(false); err != nil {
			s.loadErr = err
		} else {
			s.loadErr = nil
		}
	}
	if s.loadErr != nil {
		return fmt.Errorf("%w: %w", keys.ErrUnavailable, s.loadErr)
	}
	return nil
}

// reload reads the file if it changed since it was last read (or always,
// with force). A file that does not exist reads as empty. On failure the
// entries read before stay.
func (s *Store) reload(force bool) error {
	s.checked = s.now()
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.entries, s.stat = map[string]entry{}, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("keys file %s: %w", s.path, err)
	}
	if !force && s.stat != nil && os.SameFile(fi, s.stat) && fi.ModTime().Equal(s.stat.ModTime()) && fi.Size() == s.stat.Size() {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("keys file %s: %w", s.path, err)
	}
	defer f.Close()
	// Stat the open file: the one read is the one remembered.
	if fi, err = f.Stat(); err != nil {
		return fmt.Errorf("keys file %s: %w", s.path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fmt.Errorf("keys file %s: %w", s.path, err)
	}
	if len(data) > MaxFileSize {
		return fmt.Errorf("keys file %s is larger than %d bytes", s.path, MaxFileSize)
	}
	entries, err := parse(data)
	if err != nil {
		return fmt.Errorf("keys file %s%w", s.path, err)
	}
	s.entries, s.stat = entries, fi
	return nil
}

// parse reads a keys file. Its errors start with ":line: " or " ", to
// follow the file's name, and
// never carry a key or a secret.
func parse(data []byte) (map[string]entry, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	at := func(off int64, format string, args ...any) error {
		l, _ := keys.Position(data, off)
		return fmt.Errorf(":%d: "+format, append([]any{l}, args...)...)
	}
	tok, err := d.Token()
	if err == io.EOF {
		return nil, errors.New(" is empty; an empty keys file is {}")
	}
	if err != nil {
		return nil, syntax(data, err)
	}
	if tok != json.Delim('{') {
		return nil, at(0, "a keys file is a JSON object mapping each key to its record")
	}
	out := map[string]entry{}
	lines := map[string]int{}
	for d.More() {
		keyOff := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return nil, syntax(data, err)
		}
		key := tok.(string) // object member names are strings
		keyOff = skipSpace(data, keyOff)
		if keys.Check(key) != nil {
			return nil, at(keyOff, "a key must be 1 to %d letters, digits or '-'", keys.MaxLen)
		}
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return nil, syntax(data, err)
		}
		start := d.InputOffset() - int64(len(raw))
		fp := keys.Fingerprint(key, "")
		// Any spelling names the same key (as in Key Vault): two would
		// leave which one a lookup or a revocation finds to chance.
		canon := keys.Canonical(key)
		if l, dup := lines[canon]; dup {
			return nil, at(keyOff, "key %s is in the file twice (first on line %d, in any spelling)", fp, l)
		}
		lines[canon], _ = keys.Position(data, keyOff)
		rec, err := keys.ParseRecord(raw)
		if err != nil {
			var re *keys.RecordError
			if errors.As(err, &re) && re.Offset >= 0 {
				return nil, at(start+re.Offset, "key %s: %s", fp, re.Problem)
			}
			if errors.As(err, &re) {
				return nil, at(keyOff, "key %s: %s", fp, re.Problem)
			}
			return nil, at(keyOff, "key %s: %v", fp, err)
		}
		sum := sha256.Sum256(raw)
		out[key] = entry{rec: rec, raw: raw, version: hex.EncodeToString(sum[:8])}
	}
	if _, err := d.Token(); err != nil { // the closing brace
		return nil, syntax(data, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, at(d.InputOffset(), "data after the closing brace")
	}
	return out, nil
}

func syntax(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		l, c := keys.Position(data, syn.Offset-1)
		return fmt.Errorf(":%d:%d: not valid JSON", l, c)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New(" is cut short (a missing closing brace?)")
	}
	return errors.New(" is not valid JSON")
}

func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n,"), data[off]) >= 0 {
		off++
	}
	return off
}

// clone copies r's slices, so that callers cannot change the store's
// records.
func clone(r keys.Record) keys.Record {
	r.Sets = slices.Clone(r.Sets)
	r.Origins = slices.Clone(r.Origins)
	return r
}
