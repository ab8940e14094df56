package logwriter

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// A typical request line, as the server writes it.
var benchLine = []byte(`{"time":"2026-11-23T10:00:00.123456789Z","level":"INFO","msg":"request","method":"GET","route":"/wmts/*","status":302,"latency_ms":0.041,"bytes":0,"cred":"1a2b3c4d","path":"/1.0.0/HxGN_Imagery/default/WebMercator/12/1500/700.jpg","mode":"redirect"}` + "\n")

func devNull(b *testing.B) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// pipe is what stdout is under the Azure Functions host: a pipe whose
// reader (the host) drains it.
func pipe(b *testing.B) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, r); close(done) }()
	b.Cleanup(func() { w.Close(); <-done; r.Close() })
	return w
}

func benchDirect(b *testing.B, out io.Writer) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			out.Write(benchLine)
		}
	})
}

func benchBuffered(b *testing.B, out io.Writer, unblock func()) {
	w := New(out, Options{})
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Write(benchLine)
		}
	})
	b.StopTimer()
	unblock()
	w.Close(context.Background())
	b.ReportMetric(float64(w.Dropped())/float64(b.N), "dropped/op")
}

// One write(2) per line, as the handler logs today.
func BenchmarkDirectDevNull(b *testing.B) { benchDirect(b, devNull(b)) }
func BenchmarkDirectPipe(b *testing.B)    { benchDirect(b, pipe(b)) }

// The same lines through a Writer.
func BenchmarkWriterDevNull(b *testing.B) { benchBuffered(b, devNull(b), func() {}) }
func BenchmarkWriterPipe(b *testing.B)    { benchBuffered(b, pipe(b), func() {}) }

// benchAccounted writes from one goroutine and flushes every 2048 lines
// (500 KB, below the limit): no line is dropped, and each op carries its
// share of the flusher's write(2), so this is the whole CPU cost of a line.
func benchAccounted(b *testing.B, out io.Writer) {
	w := New(out, Options{})
	defer w.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for i := 0; b.Loop(); i++ {
		w.Write(benchLine)
		if i%2048 == 2047 {
			w.Flush(ctx)
		}
	}
	w.Flush(ctx)
	if w.Dropped() != 0 {
		b.Fatalf("dropped %d lines", w.Dropped())
	}
}

func BenchmarkDirectDevNullSerial(b *testing.B) {
	f := devNull(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		f.Write(benchLine)
	}
}
func BenchmarkWriterDevNullAccounted(b *testing.B) { benchAccounted(b, devNull(b)) }
func BenchmarkWriterPipeAccounted(b *testing.B)    { benchAccounted(b, pipe(b)) }

// A blocked stdout: every line is dropped; this is what a request pays then.
func BenchmarkWriterBlocked(b *testing.B) {
	gate := make(chan struct{})
	benchBuffered(b, blocked(gate), func() { close(gate) })
}

type blocked chan struct{}

func (c blocked) Write(p []byte) (int, error) { <-c; return len(p), nil }

// A whole slog record, formatted and handed over: what a request's log
// line costs end to end.
func benchSlog(b *testing.B, out io.Writer) {
	log := slog.New(slog.NewJSONHandler(out, nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			log.LogAttrs(context.Background(), slog.LevelInfo, "request",
				slog.String("method", "GET"), slog.String("route", "/wmts/*"), slog.Int("status", 302),
				slog.Float64("latency_ms", 0.041), slog.Int64("bytes", 0), slog.String("cred", "1a2b3c4d"),
				slog.String("path", "/1.0.0/HxGN_Imagery/default/WebMercator/12/1500/700.jpg"), slog.String("mode", "redirect"))
		}
	})
}

func BenchmarkSlogDirectPipe(b *testing.B) { benchSlog(b, pipe(b)) }

// The parallel benchmarks flood the Writer far faster than any server
// logs, so some lines are dropped (reported as dropped/op); the
// Accounted ones drop none.
func BenchmarkSlogWriterPipe(b *testing.B) {
	w := New(pipe(b), Options{Interval: 250 * time.Millisecond})
	b.Cleanup(func() { w.Close(context.Background()) })
	benchSlog(b, w)
	b.StopTimer()
	w.Close(context.Background())
	b.ReportMetric(float64(w.Dropped())/float64(b.N), "dropped/op")
}
