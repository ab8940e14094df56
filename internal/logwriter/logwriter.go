// Package logwriter takes log lines off the request path: a Writer keeps
// them in a bounded in-memory buffer and one goroutine writes them to the
// underlying writer (stdout) in batches, so that a request never waits on a
// slow or blocked stdout.
//
// It is meant to sit under log/slog's JSON (or text) handler. Those
// handlers format a whole record, newline included, into their own buffer
// and then make exactly one Write call per record, under the handler's
// mutex (log/slog/handler.go, commonHandler.handle: "h.mu.Lock(); ...
// h.w.Write(*state.buf)"). So every Write a Writer sees is one whole line,
// and a Writer keeps or drops lines whole: lines are never split,
// interleaved or joined.
package logwriter

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"
)

// Defaults for the zero Options.
const (
	// DefaultInterval is the longest a written line waits in memory.
	DefaultInterval = 250 * time.Millisecond
	// DefaultBatch is how many buffered bytes make the writer flush
	// without waiting for the interval.
	DefaultBatch = 64 << 10
	// DefaultLimit is how many bytes the buffer holds while the
	// underlying writer is busy; lines beyond it are dropped and counted.
	DefaultLimit = 1 << 20
)

// reserveShare is the share of the buffer kept for warnings and errors:
// other lines (request lines, info, debug) are dropped once the buffer is
// fuller than the rest, so that under a flood the lines an operator must
// see still get through.
const reserveShare = 4 // a quarter

// DroppedMessage is the msg of the line that reports dropped lines:
//
//	{"time":"2026-11-23T10:00:00.25Z","level":"WARN","msg":"log lines dropped","dropped":17}
const DroppedMessage = "log lines dropped"

// Options configure New. Zero values take the defaults.
type Options struct {
	// Interval bounds how long an accepted line waits before the writer
	// starts writing it out: DefaultInterval (250 ms) when zero.
	Interval time.Duration
	// Batch is the number of buffered bytes that triggers a write before
	// the interval is up: DefaultBatch (64 KiB) when zero.
	Batch int
	// Limit is the most bytes held while the underlying writer is busy
	// with the previous batch: DefaultLimit (1 MiB) when zero. A Writer
	// holds at most two buffers of this size (the one filling and the one
	// being written). A line that does not fit is dropped whole.
	Limit int
	// NewTicker starts the interval's ticker: time.NewTicker when nil.
	// Tests pass a fake to drive flushes without waiting.
	NewTicker func(d time.Duration) (tick <-chan time.Time, stop func())
	// Now stamps the dropped-lines report: time.Now when nil.
	Now func() time.Time
}

// Writer is an io.Writer that never blocks on its underlying writer.
// Create it with New and end it with Close. It is safe for concurrent
// use; each Write must be one or more whole lines, as slog's handlers
// write them.
type Writer struct {
	out      io.Writer
	batch    int
	limit    int
	now      func() time.Time
	stopTick func()

	mu      sync.Mutex
	cur     []byte // lines accepted and not yet handed to the flusher
	dropped uint64 // lines dropped since the last report
	total   uint64 // lines dropped since New
	closed  bool   // Close has begun: Write goes straight to out
	direct  sync.Mutex

	kick    chan struct{}   // cur reached batch
	flushes chan chan error // Flush requests
	quit    chan struct{}   // closed by Close
	done    chan struct{}   // closed when the flusher has ended
	spare   []byte          // the flusher's buffer; only the flusher touches it
	scratch []byte          // the flusher's buffer for the report line
	err     error           // the first error out returned; guarded by mu
}

// New starts a Writer that writes to out from its own goroutine. out is
// written by one goroutine at a time.
func New(out io.Writer, o Options) *Writer {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	o.Batch = min(o.Batch, o.Limit)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewTicker == nil {
		o.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	tick, stop := o.NewTicker(o.Interval)
	w := &Writer{
		out:      out,
		batch:    o.Batch,
		limit:    o.Limit,
		now:      o.Now,
		stopTick: stop,
		cur:      make([]byte, 0, o.Limit),
		spare:    make([]byte, 0, o.Limit),
		scratch:  make([]byte, 0, 128),
		kick:     make(chan struct{}, 1),
		flushes:  make(chan chan error),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go w.loop(tick)
	return w
}

// Write accepts p, one or more whole lines, for writing later and returns
// len(p), nil at once. If the buffer cannot hold p, p is dropped whole and
// counted, and a line saying how many were dropped is written with the
// next batch. A quarter of the buffer is kept for warnings and errors (a
// line whose level, in slog's JSON or text form, is WARN or ERROR): other
// lines are dropped before them. A p that does not end in a newline gets one, so that lines
// never join. After Close has begun, Write writes p straight through to
// the underlying writer and returns its result.
//
// In steady state Write does not allocate.
func (w *Writer) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := len(p)
	nl := p[n-1] != '\n'
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.writeDirect(p, nl)
	}
	need := n
	if nl {
		need++
	}
	before := len(w.cur)
	switch after := before + need; {
	case after <= w.limit-w.limit/reserveShare: // room for any line
	case after <= w.limit && urgent(p): // the reserve, for warnings and errors
	default:
		w.dropped++
		w.total++
		w.mu.Unlock()
		return n, nil
	}
	w.cur = append(w.cur, p...)
	if nl {
		w.cur = append(w.cur, '\n')
	}
	full := before < w.batch && len(w.cur) >= w.batch
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return n, nil
}

// urgent reports whether the line p starts is a warning or an error, by
// slog's JSON ("level":"WARN") or text (level=WARN) form, looked for in
// its first bytes, where slog writes the level.
func urgent(p []byte) bool {
	head := p[:min(len(p), 96)]
	for _, l := range levelMarks {
		if bytes.Contains(head, l) {
			return true
		}
	}
	return false
}

var levelMarks = [][]byte{[]byte(`"level":"WARN`), []byte(`"level":"ERROR`), []byte("level=WARN"), []byte("level=ERROR")}

func (w *Writer) writeDirect(p []byte, nl bool) (int, error) {
	w.direct.Lock()
	defer w.direct.Unlock()
	n, err := w.out.Write(p)
	if err == nil && nl {
		_, err = w.out.Write([]byte{'\n'})
	}
	return n, err
}

// ErrClosed is returned by Flush after Close.
var ErrClosed = errors.New("logwriter: closed")

// Flush writes every line accepted before the call, and the report of any
// dropped line, to the underlying writer, and returns the first error the
// underlying writer has returned since New. It returns ctx's error if ctx
// ends first; the lines are then still written once the underlying writer
// allows.
func (w *Writer) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case w.flushes <- reply:
	case <-w.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes everything accepted so far, stops the writer's goroutine and
// returns the first error the underlying writer returned, or ctx's error
// if ctx ends while the underlying writer is still blocked (the goroutine
// then ends when that write returns). Lines written after Close has begun
// go straight to the underlying writer, after the last batch, so a
// graceful stop loses no line; such a Write waits for the last batch.
// Close does not close the underlying writer. Only the first call does
// anything; later calls return nil.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	// The direct lock keeps Writes that arrive from now on behind the
	// final batch, in order, and out written by one goroutine at a time.
	w.direct.Lock()
	close(w.quit)
	select {
	case <-w.done:
		w.direct.Unlock()
	case <-ctx.Done():
		go func() { <-w.done; w.direct.Unlock() }()
		return ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// loop is the flusher: it writes the buffer out on every tick, whenever it
// has reached the batch size, on Flush, and a last time on Close.
func (w *Writer) loop(tick <-chan time.Time) {
	defer close(w.done)
	defer w.stopTick()
	for {
		select {
		case <-tick:
			w.flush()
		case <-w.kick:
			w.flush()
		case reply := <-w.flushes:
			w.flush()
			w.mu.Lock()
			reply <- w.err
			w.mu.Unlock()
		case <-w.quit:
			w.flush()
			return
		}
	}
}

// flush swaps the buffers under the lock and writes the full one outside
// it, followed by the report of lines dropped meanwhile.
func (w *Writer) flush() {
	w.mu.Lock()
	buf := w.cur
	w.cur = w.spare[:0]
	dropped := w.dropped
	w.dropped = 0
	w.mu.Unlock()
	var err error
	if len(buf) > 0 {
		_, err = w.out.Write(buf)
	}
	if dropped > 0 {
		w.scratch = appendDropped(w.scratch[:0], w.now(), dropped)
		if _, e := w.out.Write(w.scratch); err == nil {
			err = e
		}
	}
	w.spare = buf[:0]
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
}

// appendDropped appends the report line in slog's JSON shape.
func appendDropped(b []byte, t time.Time, n uint64) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"WARN","msg":"`+DroppedMessage+`","dropped":`...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, "}\n"...)
}
