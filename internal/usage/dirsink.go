package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DirSink keeps usage rows in a directory, one JSON file per instance,
// for a server with no table configured: its counters survive a restart,
// and `handler usage` run beside it reads them. Each instance rewrites only
// its own file (atomically), so instances never contend. It is safe for
// concurrent use.
type DirSink struct {
	Dir string

	mu  sync.Mutex
	own MemorySink // this process's rows, written whole on every Write
}

// Write implements Sink: it upserts rows and rewrites the files of the
// instances they belong to.
func (d *DirSink) Write(ctx context.Context, rows []Row) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.own.Write(ctx, rows); err != nil {
		return err
	}
	all, _ := d.own.Read(ctx, Query{To: maxTime})
	byInstance := map[string][]Row{}
	for _, r := range rows {
		byInstance[r.Instance] = nil
	}
	for _, r := range all {
		if _, ok := byInstance[r.Instance]; ok {
			byInstance[r.Instance] = append(byInstance[r.Instance], r)
		}
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	for inst, rs := range byInstance {
		if err := writeFileAtomic(filepath.Join(d.Dir, fileName(inst)), rs); err != nil {
			return err
		}
	}
	return nil
}

// Read implements Source: every instance's rows in the directory.
func (d *DirSink) Read(_ context.Context, q Query) ([]Row, error) {
	entries, err := os.ReadDir(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Row
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var rows []Row
		if err := json.Unmarshal(b, &rows); err != nil {
			return nil, fmt.Errorf("usage file %s: %w", e.Name(), err)
		}
		for _, r := range rows {
			if q.Matches(r) {
				out = append(out, r)
			}
		}
	}
	SortRows(out)
	return out, nil
}

// fileName makes an instance id safe as a file name.
func fileName(instance string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, instance) + ".json"
}

func writeFileAtomic(path string, rows []Row) error {
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".usage-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// maxTime is later than any hour a row can have.
var maxTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
