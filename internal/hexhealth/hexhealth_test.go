package hexhealth_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/hexhealth"
)

func stateJSON(t *testing.T, r *hexhealth.Recorder) string {
	t.Helper()
	b, err := json.Marshal(r.State())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStateFollowsTheLastCall(t *testing.T) {
	var r hexhealth.Recorder
	if got := stateJSON(t, &r); got != `{}` {
		t.Fatalf("before any call: %s", got)
	}
	t0 := time.Date(2026, 12, 3, 11, 0, 0, 500e6, time.FixedZone("CET", 3600))
	r.Record(t0, hexhealth.Outcome{Endpoint: hexhealth.Token})
	if got, want := stateJSON(t, &r), `{"last_call":"2026-12-03T10:00:00Z","endpoint":"token","ok":true,"last_success":"2026-12-03T10:00:00Z"}`; got != want {
		t.Fatalf("after a token:\n got %s\nwant %s", got, want)
	}
	r.Record(t0.Add(time.Minute), hexhealth.DataStatus(503))
	if got, want := stateJSON(t, &r), `{"last_call":"2026-12-03T10:01:00Z","endpoint":"data","ok":false,"failure":"status","status":503,"last_success":"2026-12-03T10:00:00Z","last_failure":"2026-12-03T10:01:00Z"}`; got != want {
		t.Fatalf("after a 503:\n got %s\nwant %s", got, want)
	}
	r.Record(t0.Add(2*time.Minute), hexhealth.Outcome{Endpoint: hexhealth.Token, Failure: hexhealth.Timeout})
	if got, want := stateJSON(t, &r), `{"last_call":"2026-12-03T10:02:00Z","endpoint":"token","ok":false,"failure":"timeout","last_success":"2026-12-03T10:00:00Z","last_failure":"2026-12-03T10:02:00Z"}`; got != want {
		t.Fatalf("after a timeout:\n got %s\nwant %s", got, want)
	}
	// A success keeps no status, whatever was passed.
	r.Record(t0.Add(3*time.Minute), hexhealth.Outcome{Endpoint: hexhealth.Data, Status: 404})
	if got, want := stateJSON(t, &r), `{"last_call":"2026-12-03T10:03:00Z","endpoint":"data","ok":true,"last_success":"2026-12-03T10:03:00Z","last_failure":"2026-12-03T10:02:00Z"}`; got != want {
		t.Fatalf("after a success:\n got %s\nwant %s", got, want)
	}
}

func TestDataStatus(t *testing.T) {
	for status, failed := range map[int]bool{200: false, 206: false, 304: false, 400: false, 401: false, 403: false, 404: false, 429: true, 500: true, 502: true, 503: true, 504: true} {
		o := hexhealth.DataStatus(status)
		if o.Endpoint != hexhealth.Data || (o.Failure == hexhealth.Status) != failed || failed && o.Status != status {
			t.Errorf("DataStatus(%d) = %+v; want failed %v", status, o, failed)
		}
	}
}

func TestNilRecorder(t *testing.T) {
	var r *hexhealth.Recorder
	r.Record(time.Now(), hexhealth.DataStatus(500))
	if got := stateJSON(t, r); got != `{}` {
		t.Fatalf("a nil recorder: %s", got)
	}
}

// Concurrent calls each leave a whole outcome: never one call's time with
// another's failure (run with -race).
func TestConcurrentRecordsStayWhole(t *testing.T) {
	var r hexhealth.Recorder
	t0 := time.Unix(1_800_000_000, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				if g%2 == 0 {
					r.Record(t0.Add(time.Duration(i)*time.Second), hexhealth.Outcome{Endpoint: hexhealth.Token})
				} else {
					r.Record(t0.Add(time.Duration(i)*time.Second+time.Hour), hexhealth.DataStatus(502))
				}
				s := r.State()
				if *s.OK != (s.LastCall.Before(t0.Add(time.Hour))) || !*s.OK && (s.Status != 502 || s.Endpoint != "data") || *s.OK && (s.Status != 0 || s.Endpoint != "token") {
					t.Errorf("a torn state: %+v ok=%v at %v", s, *s.OK, s.LastCall)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkRecord is what a streamed tile pays, from every core at once.
func BenchmarkRecord(b *testing.B) {
	var r hexhealth.Recorder
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(now, hexhealth.DataStatus(200))
		}
	})
}
