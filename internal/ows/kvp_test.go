package ows

import (
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/failure"
)

func TestParams(t *testing.T) {
	p, err := Params("service=WMS&Layers=a&LAYERS=b&access_token=x&Access_Token=y&empty=&layers=c")
	if err != nil {
		t.Fatal(err)
	}
	if p["SERVICE"] != "WMS" || p["LAYERS"] != "a,b,c" || p["EMPTY"] != "" || len(p) != 3 {
		t.Fatalf("%v", p)
	}
	if _, ok := p["ACCESS_TOKEN"]; ok {
		t.Fatal("client token kept")
	}
	if _, err := Params("a=%zz"); err == nil {
		t.Fatal("bad escape accepted")
	}
	if _, err := Params("a=1;b=2"); err == nil {
		t.Fatal("';' accepted")
	}
}

// repeated returns n pairs "X=<v>" joined by '&'.
func repeated(n int, v string) string {
	return strings.TrimSuffix(strings.Repeat("X="+v+"&", n), "&")
}

func TestParamsLimits(t *testing.T) {
	atLimit := repeated(MaxParams, "1")
	p, err := Params(atLimit)
	if err != nil {
		t.Fatalf("%d parameters refused: %v", MaxParams, err)
	}
	if want := strings.TrimSuffix(strings.Repeat("1,", MaxParams), ","); p["X"] != want {
		t.Fatalf("joined %q, want %q", p["X"], want)
	}
	long := "LAYERS=" + strings.Repeat("a", MaxQueryBytes-len("LAYERS="))
	if _, err := Params(long); err != nil {
		t.Fatalf("a %d-byte query refused: %v", len(long), err)
	}
	cases := map[string]struct{ query, says string }{
		"one pair too many":     {atLimit + "&Y=1", "more than 64 parameters"},
		"empty pairs count":     {strings.Repeat("&", MaxParams), "more than 64 parameters"},
		"one byte too long":     {long + "b", "longer than 8192 bytes"},
		"64 KiB of repeats":     {repeated(16<<10, ""), "longer than 8192 bytes"},
		"the 1 MB request line": {repeated(330_000, ""), "longer than 8192 bytes"},
	}
	for name, tc := range cases {
		var err error
		// The refusal must not depend on the query's content: no parsing.
		bytes := allocBytes(10, func() { _, err = Params(tc.query) })
		fe := failure.As(err)
		if err == nil || fe.Kind != failure.Invalid || fe.HTTPStatus() != 400 || fe.ExceptionCode() != failure.CodeInvalidParameter || !strings.Contains(fe.Message, tc.says) {
			t.Errorf("%s: Params = %v; want a 400 InvalidParameterValue saying %q", name, err, tc.says)
		}
		if bytes > 1024 {
			t.Errorf("%s: refusing allocated %d bytes per call; want it refused before parsing", name, bytes)
		}
	}
}

// allocBytes returns the bytes f allocates per call, averaged over runs.
func allocBytes(runs int, f func()) uint64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestParamsLinear checks that a repeated name costs memory in proportion
// to the query: joining values as they arrive copied the growing string
// each time, which made 4× the repeats cost 16× the bytes.
func TestParamsLinear(t *testing.T) {
	v := strings.Repeat("v", 100)
	n := MaxParams / 4
	qs, ql := repeated(n, v), repeated(4*n, v)
	small := allocBytes(50, func() { Params(qs) })
	large := allocBytes(50, func() { Params(ql) })
	if ratio := float64(large) / float64(small); ratio > 6 {
		t.Fatalf("4× the repeated parameters allocated %.1f× the bytes (%d vs %d); want about 4×", ratio, large, small)
	}
}

func TestIdentifier(t *testing.T) {
	for s, want := range map[string]bool{"HxGN_Imagery": true, "EPSG:3857": true, "a.b-c": true, "": false, "a..b": false, "a/b": false, "a b": false, "a,b": false, "a&b": false} {
		if Identifier(s) != want {
			t.Errorf("Identifier(%q) != %v", s, want)
		}
	}
}

func BenchmarkParams(b *testing.B) {
	const getMap = "SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=-20037508,-20037508,20037508,20037508&WIDTH=512&HEIGHT=256&FORMAT=image/png&TRANSPARENT=TRUE"
	for _, bc := range []struct{ name, query string }{
		{"GetMap", getMap},
		{"Repeated64", repeated(MaxParams, strings.Repeat("v", 100))},
		{"Refused1MB", repeated(330_000, "")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.query)))
			b.ReportAllocs()
			for b.Loop() {
				Params(bc.query)
			}
		})
	}
}

// FuzzParams checks the first parser every request meets against
// net/url's: whatever it accepts url.ParseQuery accepts too, with the same
// names (upper case, access_token dropped) and the same values, joined
// with commas in order; whatever it refuses is a 400 in the client's
// format, never a panic.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"", "SERVICE=WMTS&REQUEST=GetTile", "a=1&A=2&a=3", "access_token=x&Access_Token=y&k=v", "x=%zz", "a;b=c", "=&&=", "k", "k=%2C&k=,", "é=ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := Params(raw)
		if err != nil {
			if fe := failure.As(err); fe.Kind != failure.Invalid || p != nil {
				t.Fatalf("%q: refused as %v with %v", raw, fe.Kind, p)
			}
			return
		}
		if len(raw) > MaxQueryBytes || strings.Count(raw, "&")+1 > MaxParams || strings.Contains(raw, ";") {
			t.Fatalf("%q: accepted past a limit", raw)
		}
		ref, rerr := url.ParseQuery(raw)
		if rerr != nil {
			t.Fatalf("%q: accepted, but net/url refuses it: %v", raw, rerr)
		}
		want := map[string][]string{}
		for _, pair := range strings.Split(raw, "&") {
			if pair == "" {
				continue
			}
			k, v, _ := strings.Cut(pair, "=")
			k, _ = url.QueryUnescape(k)
			v, _ = url.QueryUnescape(v)
			want[strings.ToUpper(k)] = append(want[strings.ToUpper(k)], v)
		}
		delete(want, "ACCESS_TOKEN")
		if len(p) != len(want) {
			t.Fatalf("%q: %d names, want %d (%v, %v)", raw, len(p), len(want), p, want)
		}
		for k, vs := range want {
			if got, ok := p[k]; !ok || got != strings.Join(vs, ",") {
				t.Fatalf("%q: %s = %q, want %q", raw, k, got, strings.Join(vs, ","))
			}
		}
		n := 0
		for _, vs := range ref {
			n += len(vs)
		}
		if n == 0 && len(p) != 0 {
			t.Fatalf("%q: net/url finds no pair, Params %v", raw, p)
		}
	})
}
