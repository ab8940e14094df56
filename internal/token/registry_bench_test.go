package token

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

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

// staticBase builds no I/O: Source never fetches, so the benchmarks
// measure the registry alone.
func staticBase(context.Context, credential.Credential) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "bench"})
}

const benchMax = 10000 // the production default

// fullRegistry returns a registry holding benchMax sources.
func fullRegistry(b *testing.B) (*Registry, []credential.Credential) {
	b.Helper()
	r := NewRegistry(context.Background(), staticBase, RegistryOptions{Max: benchMax})
	creds := benchCreds(b, "held-", benchMax)
	for _, c := range creds {
		r.Source(c)
	}
	if r.Len() != benchMax {
		b.Fatalf("registry holds %d, want %d", r.Len(), benchMax)
	}
	return r, creds
}

// BenchmarkRegistrySourceFullMiss asks a full registry for a credential it
// has never seen, so that every call evicts one source.
func BenchmarkRegistrySourceFullMiss(b *testing.B) {
	r, _ := fullRegistry(b)
	fresh := benchCreds(b, "fresh-", b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.Source(fresh[i])
	}
	b.StopTimer()
	if r.Len() != benchMax {
		b.Fatalf("registry holds %d, want %d", r.Len(), benchMax)
	}
}

// BenchmarkRegistrySourceFullHit asks a full registry for credentials it
// holds.
func BenchmarkRegistrySourceFullHit(b *testing.B) {
	r, creds := fullRegistry(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.Source(creds[i%len(creds)])
	}
}

// BenchmarkRegistrySourceFullMissParallel is the miss case under
// contention, as a server sees it.
func BenchmarkRegistrySourceFullMissParallel(b *testing.B) {
	r, _ := fullRegistry(b)
	fresh := benchCreds(b, "fresh-", b.N)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Source(fresh[int(next.Add(1)-1)%len(fresh)])
		}
	})
}
