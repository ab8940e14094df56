package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DirSink keeps usage rows in a directory, one JSON file per instance and
// UTC day (<instance>.<YYYY-MM-DD>.json), for a server with no table
// configured: its counters survive a restart, and `handler usage` run
// beside it reads them. Each instance rewrites only its own files
// (atomically), so instances never contend, and a flush rewrites only the
// days its rows fall on: a day's file holds at most 24 rows per subject,
// however long the process runs. It holds in memory the files of the two
// latest days it wrote, and reads an older one back from disk if a late
// row needs it. It is safe for concurrent use.
type DirSink struct {
	Dir string

	mu   sync.Mutex
	days map[dayFile]map[rowID]Row // files written lately, whole
}

// dayFile names one instance's file for one UTC day.
type dayFile struct {
	instance string
	day      int64 // Unix days
}

func (f dayFile) name() string {
	return strings.TrimSuffix(fileName(f.instance), ".json") + "." + time.Unix(f.day*86400, 0).UTC().Format(time.DateOnly) + ".json"
}

// keptDays is how many of the latest days' files a DirSink keeps in
// memory: today's and yesterday's, which the hour after midnight flushes.
const keptDays = 2

// Write implements Sink: it upserts rows and rewrites the files of the
// instances and days they belong to.
func (d *DirSink) Write(_ context.Context, rows []Row) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.days == nil {
		d.days = make(map[dayFile]map[rowID]Row)
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	if err := d.checkDir(); err != nil {
		return err
	}
	var errs []error
	touched := map[dayFile]bool{} // true: to write; false: unread, so unwritten (the next flush tries again)
	for _, r := range rows {
		r.Hour = r.Hour.UTC().Truncate(time.Hour)
		f := dayFile{r.Instance, dayOf(unixHour(r.Hour))}
		held, ok := d.days[f]
		if !ok {
			if done, seen := touched[f]; seen && !done {
				continue // its file failed to read for an earlier row
			}
			var err error
			held, err = d.load(f)
			errs = append(errs, err)
			if held == nil {
				touched[f] = false
				continue
			}
			d.days[f] = held
		}
		held[rowID{r.Hour.Unix(), r.Instance, r.SubjectID}] = r
		touched[f] = true
	}
	var latest int64 = math.MinInt64
	for f := range d.days {
		latest = max(latest, f.day)
	}
	// Every touched file is written, whatever became of the others: one
	// that cannot be must not hold back the rest.
	for f, write := range touched {
		if !write {
			continue
		}
		rs := make([]Row, 0, len(d.days[f]))
		for _, r := range d.days[f] {
			rs = append(rs, r)
		}
		SortRows(rs)
		errs = append(errs, writeFileAtomic(filepath.Join(d.Dir, f.name()), rs))
	}
	for f := range d.days {
		if f.day <= latest-keptDays {
			delete(d.days, f)
		}
	}
	return errors.Join(errs...)
}

// load reads f's file back, if there is one, so that a write to it keeps
// the rows already there. A file that cannot be read (an I/O error) gives
// nil and the error: the day is neither kept nor written, and the next
// flush tries again. A file that is not usage JSON (damaged, or edited by
// hand) is moved aside to a ".corrupt-<time>" file beside it, kept for
// whoever wants to look but no longer read, and the day starts afresh, so
// that it cannot stop every later flush; the error says so.
func (d *DirSink) load(f dayFile) (map[rowID]Row, error) {
	path := filepath.Join(d.Dir, f.name())
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[rowID]Row{}, nil
	}
	if err != nil {
		return nil, err
	}
	var rows []Row
	if err := json.Unmarshal(b, &rows); err != nil {
		aside := fmt.Sprintf("%s.corrupt-%d", path, time.Now().UnixNano())
		if mvErr := os.Rename(path, aside); mvErr != nil {
			return nil, fmt.Errorf("usage file %s: %w (and it could not be moved aside: %v)", f.name(), err, mvErr)
		}
		return map[rowID]Row{}, fmt.Errorf("usage file %s was not usage JSON (%v): moved aside to %s, the day's rows start afresh", f.name(), err, filepath.Base(aside))
	}
	held := make(map[rowID]Row, len(rows))
	for _, r := range rows {
		held[rowID{r.Hour.Unix(), r.Instance, r.SubjectID}] = r
	}
	return held, nil
}

// Read implements Source: every instance's rows in the directory. Files of
// days outside q are not read.
func (d *DirSink) Read(_ context.Context, q Query) ([]Row, error) {
	entries, err := os.ReadDir(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := d.checkDir(); err != nil {
		return nil, err
	}
	var out []Row
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || !mayHold(e.Name(), q) {
			continue
		}
		rows, err := readRows(filepath.Join(d.Dir, e.Name()))
		if errors.Is(err, errNotUsage) {
			continue // not rows (a stray file, or a damaged day file the next flush moves aside): it counts nothing
		}
		if err != nil {
			return nil, err
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

// checkDir refuses a directory another user could have written rows to.
func (d *DirSink) checkDir() error {
	fi, err := os.Stat(d.Dir)
	if err != nil {
		return err
	}
	return checkOwner(d.Dir, fi)
}

// mayHold reports whether the file called name may hold rows q selects:
// a day's file only if its day overlaps q; a file of any other name (one
// instance's file from before files were kept per day) always.
func mayHold(name string, q Query) bool {
	stem := strings.TrimSuffix(name, ".json")
	i := strings.LastIndexByte(stem, '.')
	if i < 0 {
		return true
	}
	day, err := time.Parse(time.DateOnly, stem[i+1:])
	if err != nil {
		return true
	}
	return day.Before(q.To) && day.Add(24*time.Hour).After(q.From)
}

func readRows(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []Row
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("usage file %s: %w: %v", filepath.Base(path), errNotUsage, err)
	}
	return rows, nil
}

// errNotUsage marks a file in the directory that is not usage rows.
var errNotUsage = errors.New("not usage JSON")

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
	// On disk before the rename, so that a crash leaves the old file or
	// the new one, never an empty one.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
