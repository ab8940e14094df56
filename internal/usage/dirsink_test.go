package usage

import (
	"context"
	"testing"
	"time"
)

func TestDirSinkKeepsEachInstancesRowsAndReadsThemAll(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	hour := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a, b := &DirSink{Dir: dir}, &DirSink{Dir: dir}
	org := SubjectID{Org: "County", Key: "abcd1234"}
	var c1, c2 Counts
	c1[TilesRedirected], c2[TilesRedirected] = 5, 7
	if err := a.Write(ctx, []Row{{Hour: hour, Instance: "one", SubjectID: org, Counts: c1}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, []Row{{Hour: hour, Instance: "two", SubjectID: org, Counts: c2}}); err != nil {
		t.Fatal(err)
	}
	// A later write of newer totals replaces the row; other rows of the
	// instance stay in its file.
	c1[TilesRedirected] = 9
	var other Counts
	other[Capabilities] = 1
	a.Write(ctx, []Row{{Hour: hour.Add(time.Hour), Instance: "one", SubjectID: org, Counts: other}})
	a.Write(ctx, []Row{{Hour: hour, Instance: "one", SubjectID: org, Counts: c1}})
	// A new process (a CLI) reads every instance's file.
	rows, err := (&DirSink{Dir: dir}).Read(ctx, Query{From: hour, To: hour.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var tiles, caps int64
	for _, r := range rows {
		tiles += r.Counts[TilesRedirected]
		caps += r.Counts[Capabilities]
	}
	if len(rows) != 3 || tiles != 16 || caps != 1 {
		t.Fatalf("rows %d, tiles %d, capabilities %d: %+v", len(rows), tiles, caps, rows)
	}
	if rows, _ := (&DirSink{Dir: t.TempDir() + "/none"}).Read(ctx, Query{To: hour}); len(rows) != 0 {
		t.Fatal("an empty directory has no rows")
	}
}
