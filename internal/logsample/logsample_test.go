package logsample

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/testlog"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{
		"": 1, "  ": 1, "1": 1, "0": 0, "0.1": 0.1, " 0.25 ": 0.25, "1.0": 1,
		"10%": 0.1, "100%": 1, "0%": 0, "2.5 %": 0.025, "0.000001": 0.000001,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-0.1", "1.5", "101%", "1/10", "ten", "NaN", "Inf", "%", "0.0000001", "0x1p-2", "10%%"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), in) {
			t.Errorf("ParseRate(%q): error %q does not quote the value", in, err)
		}
	}
}

func TestRateOneIsNoWrapper(t *testing.T) {
	next := slog.NewJSONHandler(&bytes.Buffer{}, nil)
	if h := New(next, 1); h != next {
		t.Fatal("rate 1 wraps the handler")
	}
}

// logged parses the JSON lines in b.
func logged(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestKeepsEveryErrorAndAFractionOfSuccesses(t *testing.T) {
	for _, rate := range []float64{0, 0.1, 0.25, 0.5} {
		var buf bytes.Buffer
		log := slog.New(New(slog.NewJSONHandler(&buf, nil), rate)).With("instance", "a")
		const n = 1000
		always := 0
		for i := range n {
			log.Info("request", "route", "/wmts/*", "status", []int{302, 200, 304}[i%3], "n", i)
			// Interleaved lines that must all survive.
			switch i % 10 {
			case 0:
				log.Info("request", "status", 403, "n", i) // a refusal
			case 1:
				log.Warn("request", "status", 502, "n", i)
			case 2:
				log.Info("request", "status", 200, "err", "response aborted", "n", i)
			case 3:
				log.Info("request", "status", 429, "n", i)
			case 4:
				log.Info("listening", "status", 200, "n", i) // not a request line
			case 5:
				log.Warn("request", "status", 200, "n", i) // a warning is never sampled
			case 6:
				log.Info("request", "n", i) // no status: kept
			case 7:
				log.WithGroup("g").Info("request", "status", 404, "n", i)
			default:
				continue
			}
			always++
		}
		var kept, others int
		for _, m := range logged(t, &buf) {
			if m["instance"] != "a" {
				t.Fatalf("lost the logger's attributes: %v", m)
			}
			st, _ := m["status"].(float64)
			if m["msg"] == "request" && m["level"] == "INFO" && st > 0 && st < 400 && m["err"] == nil {
				kept++
			} else {
				others++
			}
		}
		if want := int(n * rate); kept != want || others != always {
			t.Errorf("rate %v: kept %d successes (want %d) and %d other lines (want all %d)", rate, kept, want, others, always)
		}
	}
}

func TestSampleIsEvenlySpread(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(slog.NewJSONHandler(&buf, nil), 0.1))
	for i := 1; i <= 100; i++ {
		log.Info("request", "status", 302, "n", i)
	}
	var ns []float64
	for _, m := range logged(t, &buf) {
		ns = append(ns, m["n"].(float64))
	}
	for i, n := range ns {
		if n != float64(10*(i+1)) {
			t.Fatalf("kept %v, want every tenth", ns)
		}
	}
}

func TestConcurrentCountIsExact(t *testing.T) {
	var buf testlog.Buffer
	h := New(slog.NewJSONHandler(&buf, nil), 0.25)
	var wg sync.WaitGroup
	for g := range 8 {
		log := slog.New(h).With("g", g)
		wg.Go(func() {
			for range 1000 {
				log.Info("request", "status", 200)
			}
		})
	}
	wg.Wait()
	if got := strings.Count(buf.String(), "\n"); got != 2000 {
		t.Fatalf("kept %d of 8000 at 0.25, want 2000", got)
	}
}

func TestEnabledAndErrorsPassThrough(t *testing.T) {
	h := New(failing{slog.LevelWarn}, 0.5)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Fatal("Enabled is not the next handler's")
	}
	r := slog.NewRecord(time.Time{}, slog.LevelError, "request", 0)
	r.AddAttrs(slog.Int("status", 500))
	if err := h.Handle(context.Background(), r); err == nil {
		t.Fatal("the next handler's error was lost")
	}
}

type failing struct{ min slog.Level }

func (f failing) Enabled(_ context.Context, l slog.Level) bool { return l >= f.min }
func (failing) Handle(context.Context, slog.Record) error      { return errors.New("out") }
func (f failing) WithAttrs([]slog.Attr) slog.Handler           { return f }
func (f failing) WithGroup(string) slog.Handler                { return f }

// A request line at rate 0.1 through the sampler into the JSON handler
// (nine in ten are dropped before formatting), against rate 1.
func benchRate(b *testing.B, rate float64) {
	log := slog.New(New(slog.NewJSONHandler(discard{}, nil), rate))
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(context.Background(), slog.LevelInfo, "request",
			slog.String("method", "GET"), slog.String("route", "/wmts/*"), slog.Int("status", 302),
			slog.Float64("latency_ms", 0.041), slog.Int64("bytes", 0), slog.String("cred", "1a2b3c4d"),
			slog.String("path", "/1.0.0/HxGN_Imagery/default/WebMercator/12/1500/700.jpg"), slog.String("mode", "redirect"))
	}
}

func BenchmarkRequestLineAll(b *testing.B)      { benchRate(b, 1) }
func BenchmarkRequestLineSample10(b *testing.B) { benchRate(b, 0.1) }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
