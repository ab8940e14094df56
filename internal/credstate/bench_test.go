package credstate

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
)

// benchCreds returns n distinct credentials with their keys computed, as
// credential.Decode leaves them on the request path; prefix tells sets
// apart.
func benchCreds(b *testing.B, prefix string, n int) []credential.Credential {
	b.Helper()
	creds := make([]credential.Credential, n)
	for i := range creds {
		c, err := credential.Decode(credential.Encode(prefix+strconv.Itoa(i)), credential.Encode("bench-secret"))
		if err != nil {
			b.Fatal(err)
		}
		creds[i] = c
	}
	return creds
}

const benchMax = 10000 // the production default

// fullTable returns a table holding benchMax credentials.
func fullTable(b *testing.B) (*Table, []credential.Credential) {
	b.Helper()
	r := New(context.Background(), Options{Tokens: staticBase, Max: benchMax})
	creds := benchCreds(b, "held-", benchMax)
	for _, c := range creds {
		r.Get(c)
	}
	if r.Len() != benchMax {
		b.Fatalf("table holds %d, want %d", r.Len(), benchMax)
	}
	return r, creds
}

// BenchmarkGetFullMiss asks a full table for a credential it
// has never seen, so that every call evicts one source.
func BenchmarkGetFullMiss(b *testing.B) {
	r, _ := fullTable(b)
	fresh := benchCreds(b, "fresh-", b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.Get(fresh[i])
	}
	b.StopTimer()
	if r.Len() != benchMax {
		b.Fatalf("table holds %d, want %d", r.Len(), benchMax)
	}
}

// BenchmarkGetFullHit asks a full table for credentials it
// holds.
func BenchmarkGetFullHit(b *testing.B) {
	r, creds := fullTable(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.Get(creds[i%len(creds)])
	}
}

// BenchmarkGetFullMissParallel is the miss case under
// contention, as a server sees it.
func BenchmarkGetFullMissParallel(b *testing.B) {
	r, _ := fullTable(b)
	fresh := benchCreds(b, "fresh-", b.N)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Get(fresh[int(next.Add(1)-1)%len(fresh)])
		}
	})
}
