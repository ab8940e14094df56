package usage

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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

func TestDirSinkRewritesOnlyTheDaysItsRowsFallOn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := &DirSink{Dir: dir}
	org := SubjectID{Org: "County", Key: "abcd1234"}
	day1 := time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC)
	var c Counts
	c[TilesRedirected] = 3
	if err := d.Write(ctx, []Row{{Hour: day1, Instance: "one", SubjectID: org, Counts: c}}); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(dir, "one.2026-11-20.json")
	before, err := os.Stat(first)
	if err != nil {
		t.Fatalf("no file for the row's day: %v", err)
	}
	// A week of later flushes: each rewrites its own day's file only, and
	// the sink holds no more than the latest days' rows.
	for h := 1; h <= 7*24; h++ {
		c[TilesRedirected] = int64(h)
		if err := d.Write(ctx, []Row{{Hour: day1.Add(time.Duration(h) * time.Hour), Instance: "one", SubjectID: org, Counts: c}}); err != nil {
			t.Fatal(err)
		}
	}
	after, err := os.Stat(first)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("the first day's file was rewritten by later days' flushes (%v)", err)
	}
	if len(d.days) > keptDays {
		t.Fatalf("the sink holds %d days' files in memory, want at most %d", len(d.days), keptDays)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "one.*.json"))
	if len(names) != 8 {
		t.Fatalf("%d day files, want 8: %v", len(names), names)
	}
	rows, err := (&DirSink{Dir: dir}).Read(ctx, Query{From: day1, To: day1.Add(8 * 24 * time.Hour)})
	if err != nil || len(rows) != 7*24+1 {
		t.Fatalf("read %d rows (%v), want %d", len(rows), err, 7*24+1)
	}
}

func TestDirSinkKeepsTheRowsOfADayFileItDidNotWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := (&DirSink{Dir: dir}).Write(ctx, []Row{sinkRow(sinkHour, "one", Capabilities, 2)}); err != nil {
		t.Fatal(err)
	}
	// Another sink (a process that restarted under a fixed instance name)
	// writes a later hour of the same day: the earlier row stays.
	if err := (&DirSink{Dir: dir}).Write(ctx, []Row{sinkRow(sinkHour.Add(time.Hour), "one", Capabilities, 2)}); err != nil {
		t.Fatal(err)
	}
	rows, err := (&DirSink{Dir: dir}).Read(ctx, Query{From: sinkHour, To: sinkHour.Add(24 * time.Hour)})
	if err != nil || len(rows) != 2 {
		t.Fatalf("read %d rows (%v), want 2", len(rows), err)
	}
}

func TestDirSinkReadsOnlyTheDaysAsked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	hour := sinkHour
	legacy, err := json.Marshal([]Row{sinkRow(hour, "old", TilesStreamed, 4)})
	if err != nil {
		t.Fatal(err)
	}
	// A file from before day files, one of another day, and a stray one
	// that is not usage rows at all.
	if err := os.WriteFile(filepath.Join(dir, "old.json"), legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	nov1 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	other, _ := json.Marshal([]Row{sinkRow(nov1, "one", TilesStreamed, 9)})
	if err := os.WriteFile(filepath.Join(dir, "one.2026-11-01.json"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.json"), []byte(`{"note":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &DirSink{Dir: dir}
	if err := d.Write(ctx, []Row{sinkRow(hour, "one", TilesStreamed, 4)}); err != nil {
		t.Fatal(err)
	}
	today := Query{From: hour.Truncate(24 * time.Hour), To: hour.Add(time.Hour)}
	rows, err := d.Read(ctx, today)
	if err != nil || len(rows) != 2 {
		t.Fatalf("read %d rows (%v), want today's and the old file's; a stray file skipped", len(rows), err)
	}
	if mayHold("one.2026-11-01.json", today) || !mayHold("one.2026-11-01.json", Query{From: nov1, To: hour}) {
		t.Fatal("a day's file is read for the days it holds, and only those")
	}
	rows, err = d.Read(ctx, Query{From: nov1, To: nov1.Add(time.Hour)})
	if err != nil || len(rows) != 1 || rows[0].Counts[TilesStreamed] != 9 {
		t.Fatalf("November 1: %v %v", rows, err)
	}
}

// A day file this instance cannot read (a disk error, an edit) is moved
// aside: the flush that finds it says so, writes the other days' files
// all the same, and later flushes of that day succeed.
func TestDirSinkMovesAsideAFileItCannotRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	org := sinkOrg
	today := sinkHour
	yesterday := today.Add(-24 * time.Hour)
	bad := filepath.Join(dir, "one.2026-11-21.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c Counts
	c[TilesRedirected] = 2
	d := &DirSink{Dir: dir}
	err := d.Write(ctx, []Row{
		{Hour: yesterday, Instance: "one", SubjectID: org, Counts: c},
		{Hour: today, Instance: "one", SubjectID: org, Counts: c},
	})
	if err == nil || !strings.Contains(err.Error(), "moved aside") {
		t.Fatalf("the unreadable file went unreported: %v", err)
	}
	if aside, _ := filepath.Glob(bad + ".corrupt-*"); len(aside) != 1 {
		t.Fatalf("the unreadable file was not kept aside: %v", aside)
	}
	c[TilesRedirected] = 3
	if err := d.Write(ctx, []Row{{Hour: yesterday, Instance: "one", SubjectID: org, Counts: c}}); err != nil {
		t.Fatalf("the next flush of that day: %v", err)
	}
	rows, err := (&DirSink{Dir: dir}).Read(ctx, Query{From: yesterday, To: today.Add(time.Hour)})
	if err != nil || len(rows) != 2 || rows[0].Counts[TilesRedirected] != 3 || rows[1].Counts[TilesRedirected] != 2 {
		t.Fatalf("read %+v (%v); want yesterday's 3 and today's 2", rows, err)
	}
}

// A day file that exists but cannot be read for now (here: a directory
// in its place, an I/O error as any other) is neither moved aside nor
// taken as empty: that flush fails for its day, and the next one reads
// what is there by then.
func TestDirSinkLeavesAFileItCannotReadForNow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	hour := sinkHour
	path := filepath.Join(dir, "one.2026-11-22.json")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	d := &DirSink{Dir: dir}
	later := sinkRow(hour.Add(time.Hour), "one", TilesRedirected, 5)
	// Two rows of that day, as a flush of two subjects has: the file is
	// tried once, and its error said once.
	other := later
	other.Key = "ef567890"
	err := d.Write(ctx, []Row{later, other})
	if err == nil {
		t.Fatal("a flush over a file it could not read succeeded")
	}
	if n := strings.Count(err.Error(), "one.2026-11-22.json"); n != 1 {
		t.Fatalf("the unreadable file is named %d times in %q, want once", n, err)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Fatalf("a file unreadable for now was moved aside: %v", aside)
	}
	// By the next flush the file reads (its earlier hour, written by a
	// predecessor): the flush keeps that hour and adds its own.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := (&DirSink{Dir: dir}).Write(ctx, []Row{sinkRow(hour, "one", TilesRedirected, 5)}); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, []Row{later}); err != nil {
		t.Fatal(err)
	}
	if rows, err := d.Read(ctx, Query{From: hour, To: hour.Add(24 * time.Hour)}); err != nil || len(rows) != 2 {
		t.Fatalf("read %d rows (%v), want the predecessor's hour and this one", len(rows), err)
	}
}

// sinkOrg and sinkHour are the DirSink tests' subject and hour.
var (
	sinkOrg  = SubjectID{Org: "County", Key: "abcd1234"}
	sinkHour = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
)

// sinkRow is instance's row for sinkOrg at hour, counting n of kind k.
func sinkRow(hour time.Time, instance string, k Kind, n int64) Row {
	var c Counts
	c[k] = n
	return Row{Hour: hour, Instance: instance, SubjectID: sinkOrg, Counts: c}
}
