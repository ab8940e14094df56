package logwriter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is the underlying writer: it records what it was given, tells
// waiters, and blocks while held.
type sink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	err     error
	gate    chan struct{} // non-nil: each Write waits for it to be closed
	entered chan struct{} // receives once per Write, before the gate
	wrote   chan struct{} // receives once per Write, after recording
}

func newSink() *sink {
	return &sink{entered: make(chan struct{}, 1024), wrote: make(chan struct{}, 1024)}
}

func (s *sink) Write(p []byte) (int, error) {
	signal(s.entered)
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	s.mu.Lock()
	s.buf.Write(p)
	s.writes++
	err := s.err
	s.mu.Unlock()
	signal(s.wrote)
	return len(p), err
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *sink) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *sink) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// manualTicker is an injected ticker: the test decides when it ticks.
type manualTicker struct {
	c        chan time.Time
	interval time.Duration
	stopped  chan struct{}
}

func newManualTicker() *manualTicker {
	return &manualTicker{c: make(chan time.Time), stopped: make(chan struct{})}
}

func (m *manualTicker) start(d time.Duration) (<-chan time.Time, func()) {
	m.interval = d
	return m.c, func() { close(m.stopped) }
}

func (m *manualTicker) tick() { m.c <- time.Time{} }

var stamp = time.Date(2026, 11, 23, 10, 0, 0, 250_000_000, time.UTC)

func newWriter(t *testing.T, out *sink, o Options) (*Writer, *manualTicker) {
	t.Helper()
	tk := newManualTicker()
	o.NewTicker = tk.start
	o.Now = func() time.Time { return stamp }
	w := New(out, o)
	t.Cleanup(func() {
		out.release()
		w.Close(context.Background())
	})
	return w, tk
}

// within fails the test if fn does not return: the guard against a hang,
// not a timing assertion.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s blocked", what)
	}
}

func wait(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
}

func line(i int) []byte { return fmt.Appendf(nil, `{"msg":"request","n":%d}`+"\n", i) }

func TestDefaultInterval(t *testing.T) {
	out := newSink()
	_, tk := newWriter(t, out, Options{})
	if tk.interval != 250*time.Millisecond {
		t.Fatalf("ticker interval %v, want 250ms", tk.interval)
	}
	_, tk = newWriter(t, out, Options{Interval: time.Second})
	if tk.interval != time.Second {
		t.Fatalf("ticker interval %v, want the given 1s", tk.interval)
	}
}

func TestTickWritesWhatWaits(t *testing.T) {
	out := newSink()
	w, tk := newWriter(t, out, Options{})
	w.Write(line(1))
	w.Write(line(2))
	// Below the batch size only a tick (or Flush, Close) writes: nothing
	// can have reached out yet.
	if s := out.String(); s != "" {
		t.Fatalf("written before the tick: %q", s)
	}
	tk.tick()
	wait(t, out.wrote, "write after the tick")
	if got, want := out.String(), string(line(1))+string(line(2)); got != want {
		t.Fatalf("after the tick: %q, want %q", got, want)
	}
	// The next tick with nothing new writes nothing.
	tk.tick()
	w.Write(line(3))
	tk.tick()
	wait(t, out.wrote, "second write")
	if n := out.count(); n != 2 {
		t.Fatalf("%d writes to out, want 2 (an empty buffer is not written)", n)
	}
}

func TestFullBatchWritesWithoutTick(t *testing.T) {
	out := newSink()
	w, _ := newWriter(t, out, Options{Batch: 100})
	var want strings.Builder
	for i := 0; want.Len() < 100; i++ {
		w.Write(line(i))
		want.Write(line(i))
	}
	wait(t, out.wrote, "write of a full batch")
	if got := out.String(); got != want.String() {
		t.Fatalf("batch: %q, want %q", got, want.String())
	}
}

func TestBlockedOutputNeverBlocksWrite(t *testing.T) {
	out := newSink()
	out.hold()
	w, tk := newWriter(t, out, Options{Limit: 4096, Batch: 512})
	w.Write(line(0))
	tk.tick()
	wait(t, out.entered, "flusher inside out.Write") // now stuck there
	within(t, "Write on a blocked output", func() {
		for i := range 10000 {
			if n, err := w.Write(line(i)); n != len(line(i)) || err != nil {
				t.Errorf("Write = %d, %v", n, err)
			}
		}
	})
	if w.Dropped() == 0 {
		t.Fatal("10000 lines into a 4 KiB buffer on a blocked output dropped none")
	}
}

func TestDropsAreCountedAndReported(t *testing.T) {
	out := newSink()
	out.hold()
	w, tk := newWriter(t, out, Options{Limit: 100})
	first := []byte(`{"msg":"first"}` + "\n")
	w.Write(first)
	tk.tick()
	wait(t, out.entered, "flusher inside out.Write")
	// The flusher holds "first"; the other buffer takes 100 bytes, 75 of
	// them for lines that are not warnings.
	l := []byte(strings.Repeat("x", 29) + "\n") // 30 bytes: two fit
	for range 10 {
		w.Write(l)
	}
	if got := w.Dropped(); got != 8 {
		t.Fatalf("Dropped = %d, want 8", got)
	}
	out.release()
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{`{"msg":"first"}`, string(l[:29]), string(l[:29])}
	if len(lines) != len(want)+1 || strings.Join(lines[:3], "\n") != strings.Join(want, "\n") {
		t.Fatalf("output:\n%s", out.String())
	}
	var report struct {
		Time    time.Time
		Level   string
		Msg     string
		Dropped int
	}
	if err := json.Unmarshal([]byte(lines[3]), &report); err != nil {
		t.Fatalf("report %q: %v", lines[3], err)
	}
	if !report.Time.Equal(stamp) || report.Level != "WARN" || report.Msg != DroppedMessage || report.Dropped != 8 {
		t.Fatalf("report %q", lines[3])
	}
	// Reported once: the count restarts, the total stays.
	w.Write(first)
	w.Flush(context.Background())
	if strings.Count(out.String(), DroppedMessage) != 1 || w.Dropped() != 8 {
		t.Fatalf("after a second flush (Dropped %d):\n%s", w.Dropped(), out.String())
	}
}

func TestTooLongLineIsDroppedWhole(t *testing.T) {
	out := newSink()
	w, _ := newWriter(t, out, Options{Limit: 64})
	w.Write([]byte(strings.Repeat("y", 100) + "\n"))
	w.Write([]byte("ok\n"))
	w.Flush(context.Background())
	if got := out.String(); !strings.HasPrefix(got, "ok\n") || strings.Contains(got, "y") || !strings.Contains(got, `"dropped":1}`) {
		t.Fatalf("output %q", got)
	}
}

func TestCloseWritesEverythingAndLaterLinesGoStraightThrough(t *testing.T) {
	out := newSink()
	w, tk := newWriter(t, out, Options{})
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				w.Write(line(g*each + i))
			}
		})
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tk.stopped:
	default:
		t.Fatal("Close left the ticker running")
	}
	w.Write([]byte(`{"msg":"stopped"}` + "\n"))
	seen := checkLines(t, out.String())
	if len(seen) != writers*each+1 {
		t.Fatalf("%d lines after Close, want %d", len(seen), writers*each+1)
	}
	if w.Dropped() != 0 {
		t.Fatalf("dropped %d", w.Dropped())
	}
	if !strings.HasSuffix(out.String(), `{"msg":"stopped"}`+"\n") {
		t.Fatal("the line written after Close is not last")
	}
	if err := w.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseGivesUpWithContext(t *testing.T) {
	out := newSink()
	out.hold()
	w, _ := newWriter(t, out, Options{})
	w.Write(line(1))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-out.entered; cancel() }()
	if err := w.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close on a blocked output: %v", err)
	}
	out.release()
	// The final batch still lands, then later lines after it.
	within(t, "Write after Close", func() { w.Write(line(2)) })
	if got := out.String(); got != string(line(1))+string(line(2)) {
		t.Fatalf("output %q", got)
	}
}

func TestMissingNewlineIsAdded(t *testing.T) {
	out := newSink()
	w, _ := newWriter(t, out, Options{})
	w.Write([]byte("a"))
	w.Write([]byte("b\n"))
	w.Flush(context.Background())
	if got := out.String(); got != "a\nb\n" {
		t.Fatalf("output %q", got)
	}
}

func TestFlushReportsOutputError(t *testing.T) {
	out := newSink()
	out.err = errors.New("disk full")
	w, _ := newWriter(t, out, Options{})
	w.Write(line(1))
	if err := w.Flush(context.Background()); err == nil || err.Error() != "disk full" {
		t.Fatalf("Flush: %v", err)
	}
}

// TestSlogLinesStayWhole puts slog's JSON handler on top, many goroutines
// logging while a small buffer drops: every line that arrives is one
// whole record, and arrived plus dropped is everything logged.
func TestSlogLinesStayWhole(t *testing.T) {
	out := newSink()
	w, tk := newWriter(t, out, Options{Limit: 8 << 10, Batch: 1 << 10})
	log := slog.New(slog.NewJSONHandler(w, nil))
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		for {
			select {
			case <-stop:
				return
			case tk.c <- time.Time{}:
			}
		}
	}()
	const goroutines, each = 16, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				log.Info("request", "n", g*each+i, "path", strings.Repeat("p", i%300))
			}
		})
	}
	wg.Wait()
	close(stop)
	<-ticked
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var records, reported int
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var rec struct {
			Msg     string
			N       *int
			Path    string
			Dropped int
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not one JSON record: %q", l)
		}
		switch rec.Msg {
		case "request":
			if rec.N == nil || len(rec.Path) != (*rec.N%each)%300 {
				t.Fatalf("mangled record %q", l)
			}
			records++
		case DroppedMessage:
			reported += rec.Dropped
		default:
			t.Fatalf("unexpected line %q", l)
		}
	}
	if records+reported != goroutines*each || uint64(reported) != w.Dropped() {
		t.Fatalf("%d records arrived + %d reported dropped (Dropped %d), want %d in all", records, reported, w.Dropped(), goroutines*each)
	}
}

func TestWriteDoesNotAllocate(t *testing.T) {
	out := newSink()
	w, tk := newWriter(t, out, Options{})
	l := line(42)
	allocs := testing.AllocsPerRun(1000, func() { w.Write(l) })
	if allocs != 0 {
		t.Fatalf("Write allocates %.1f times per call", allocs)
	}
	tk.tick()
}

// checkLines splits s into lines, each of which must be one of line(i),
// and returns which i were seen (each at most once).
func checkLines(t *testing.T, s string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if !json.Valid([]byte(l)) || seen[l] {
			t.Fatalf("bad or repeated line %q", l)
		}
		seen[l] = true
	}
	return seen
}

// Under a flood, warnings and errors get through where request lines are
// dropped: a quarter of the buffer is theirs.
func TestWarningsGoFirst(t *testing.T) {
	out := newSink()
	out.hold()
	w, tk := newWriter(t, out, Options{Limit: 1000})
	w.Write([]byte(`{"msg":"first"}` + "\n"))
	tk.tick()
	wait(t, out.entered, "flusher inside out.Write")
	info := []byte(`{"time":"2026-12-03T09:00:00Z","level":"INFO","msg":"request","status":200}` + "\n")
	for range 100 {
		w.Write(info)
	}
	if w.Dropped() == 0 {
		t.Fatal("the flood dropped nothing: the test proves nothing")
	}
	warnJSON := []byte(`{"time":"2026-12-03T09:00:00Z","level":"WARN","msg":"token store unreachable"}` + "\n")
	errText := []byte("time=2026-12-03T09:00:00Z level=ERROR msg=\"internal error\"\n")
	dropped := w.Dropped()
	w.Write(warnJSON)
	w.Write(errText)
	if w.Dropped() != dropped {
		t.Fatalf("a warning or an error was dropped with the request lines")
	}
	out.release()
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "token store unreachable") || !strings.Contains(out.String(), "internal error") {
		t.Fatalf("output lacks the warning or the error:\n%s", out.String())
	}
}
