package usage

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// SubjectID names who requests are counted under. For /v2 API keys it is
// the key's organisation and the key's fingerprint; for v1 credential URLs
// Org is empty and Key is the credential's 8-hex-digit fingerprint. It is
// never a key, a client id or secret.
type SubjectID struct {
	Org string
	Key string
}

// Other is the subject that counts fold into when a Counter holds as many
// subjects as it may (Options.MaxSubjects): totals stay exact, only the
// attribution is lost, and Stats.FoldedSubjects says how often it happened.
var Other = SubjectID{Org: "(other)", Key: "(other)"}

// Row is one instance's absolute totals for one subject in one UTC hour.
// Rows are written whole (upsert), never incremented, so a failed write is
// repaired by the next one.
type Row struct {
	Hour     time.Time // UTC, on the hour
	Instance string
	SubjectID
	Counts Counts
}

// Query selects rows: those whose Hour is in [From, To), for one subject
// when Only is set, else for all.
type Query struct {
	From, To time.Time
	Only     *SubjectID
}

// Source reads usage rows. Implementations are safe for concurrent use.
type Source interface {
	// Read returns the rows q selects, in no particular order.
	Read(ctx context.Context, q Query) ([]Row, error)
}

// Sink stores usage rows. Implementations are safe for concurrent use.
type Sink interface {
	Source
	// Write upserts rows: each replaces the row of the same (Instance,
	// SubjectID, Hour). On error, any subset may have been written; the
	// caller writes them all again later with newer totals.
	Write(ctx context.Context, rows []Row) error
}

type rowID struct {
	hour     int64
	instance string
	SubjectID
}

// MemorySink keeps rows in the process: a single server with no table
// still gets its reports. The zero value is ready; it is safe for
// concurrent use and unbounded (it holds one row per instance, subject and
// hour, for as long as the process lives).
type MemorySink struct {
	mu   sync.Mutex
	rows map[rowID]Row
}

// Write implements Sink.
func (m *MemorySink) Write(_ context.Context, rows []Row) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rows == nil {
		m.rows = make(map[rowID]Row)
	}
	for _, r := range rows {
		r.Hour = r.Hour.UTC().Truncate(time.Hour)
		m.rows[rowID{r.Hour.Unix(), r.Instance, r.SubjectID}] = r
	}
	return nil
}

// Read implements Source; rows come sorted by hour, subject and instance.
func (m *MemorySink) Read(_ context.Context, q Query) ([]Row, error) {
	m.mu.Lock()
	var out []Row
	for _, r := range m.rows {
		if q.Matches(r) {
			out = append(out, r)
		}
	}
	m.mu.Unlock()
	SortRows(out)
	return out, nil
}

// Matches reports whether q selects r.
func (q Query) Matches(r Row) bool {
	if r.Hour.Before(q.From) || !r.Hour.Before(q.To) {
		return false
	}
	return q.Only == nil || *q.Only == r.SubjectID
}

// SortRows orders rows by hour, organisation, key and instance.
func SortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(a.Hour.Compare(b.Hour), cmp.Compare(a.Org, b.Org), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Instance, b.Instance))
	})
}
