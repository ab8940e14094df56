package fakeprovider

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"net/http/httptest"
	"testing"
	"time"
)

func TestJPEGStaysUnderItsSize(t *testing.T) {
	for _, max := range []int{8 << 10, 30 << 10} {
		b := JPEG(max)
		if len(b) > max {
			t.Errorf("JPEG(%d) is %d bytes", max, len(b))
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds() != image.Rect(0, 0, 256, 256) {
			t.Errorf("JPEG(%d): %v %v", max, err, img)
		}
	}
	if !bytes.Equal(JPEG(10<<10), JPEG(10<<10)) {
		t.Error("JPEG is not deterministic")
	}
}

func TestPNGHasOpaqueAndTransparentHalves(t *testing.T) {
	img, err := png.Decode(bytes.NewReader(PNG(64)))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 64, 64) {
		t.Errorf("bounds %v", img.Bounds())
	}
	if _, _, _, a := img.At(10, 10).RGBA(); a != 0xffff {
		t.Errorf("left half alpha %d, want opaque", a)
	}
	if _, _, _, a := img.At(50, 10).RGBA(); a != 0 {
		t.Errorf("right half alpha %d, want transparent", a)
	}
}

func TestImageSizeAndFormat(t *testing.T) {
	for _, f := range []string{"image/jpeg", "image/png"} {
		b, ok := Image(f, 120, 70)
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if !ok || err != nil || cfg.Width != 120 || cfg.Height != 70 {
			t.Errorf("%s: %v %v %+v", f, ok, err, cfg)
		}
	}
	if _, ok := Image("image/gif", 10, 10); ok {
		t.Error("image/gif accepted")
	}
}

func TestInGridAndMatrices(t *testing.T) {
	for _, c := range []struct {
		z, row, col string
		want        bool
	}{
		{"0", "0", "0", true}, {"3", "7", "7", true}, {"3", "8", "0", false}, {"3", "0", "8", false},
		{"16", "0", "0", false}, {"-1", "0", "0", false}, {"2", "-1", "0", false}, {"x", "0", "0", false},
	} {
		if got := InGrid(c.z, c.row, c.col, 15); got != c.want {
			t.Errorf("InGrid(%s,%s,%s) = %v", c.z, c.row, c.col, got)
		}
	}
	ms := Matrices(15)
	if len(ms) != 16 || ms[15].Z != 15 || ms[15].N != 1<<15 || ms[0].Scale != "559082264.0287178" {
		t.Errorf("Matrices(15): %d levels, first %+v, last %+v", len(ms), ms[0], ms[len(ms)-1])
	}
}

func TestXMLEscapes(t *testing.T) {
	if got := XML(`a&b<"c">`); got != "a&amp;b&lt;&#34;c&#34;&gt;" {
		t.Errorf("XML = %q", got)
	}
}

func TestWaitGivesUpWhenTheCallerLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	start := time.Now()
	if Wait(r, time.Minute) || time.Since(start) > 5*time.Second {
		t.Error("Wait went on for a caller that left")
	}
	if !Wait(httptest.NewRequest("GET", "/", nil), time.Millisecond) {
		t.Error("Wait gave up for a caller that stayed")
	}
}

func TestSwitchboardSetAndGetUnderRace(t *testing.T) {
	type switches struct {
		Status     int
		RetryAfter string
	}
	var s Switchboard[switches]
	if got := s.Get(); got != (switches{}) {
		t.Fatalf("zero Switchboard holds %+v", got)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			s.Get()
		}
	}()
	s.Set(switches{Status: 429, RetryAfter: "7"})
	<-done
	if got := s.Get(); got != (switches{Status: 429, RetryAfter: "7"}) {
		t.Errorf("Get() = %+v after Set", got)
	}
}

func TestSetRetryAfterOnlyWhenGiven(t *testing.T) {
	w := httptest.NewRecorder()
	SetRetryAfter(w, "")
	if _, set := w.Header()["Retry-After"]; set {
		t.Errorf("empty value set Retry-After: %q", w.Header().Values("Retry-After"))
	}
	SetRetryAfter(w, "7")
	if got := w.Header().Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After %q, want 7", got)
	}
}

func TestKeysAddGetRevoke(t *testing.T) {
	var k Keys[[]string]
	if _, ok := k.Get("a"); ok {
		t.Fatal("empty register holds a")
	}
	k.Add("a", []string{"m1"})
	k.Add("b", nil)
	if v, ok := k.Get("a"); !ok || len(v) != 1 || v[0] != "m1" {
		t.Errorf("Get(a) = %v, %v", v, ok)
	}
	k.Revoke("a")
	if _, ok := k.Get("a"); ok {
		t.Error("a still registered after Revoke")
	}
	if v, ok := k.Get("b"); !ok || v != nil {
		t.Errorf("Get(b) = %v, %v after revoking a", v, ok)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			k.Get("b")
		}
	}()
	k.Add("c", nil)
	<-done
}

// A capabilities template escapes with "x", and Render panics on a
// template that cannot run on its data.
func TestTemplateRender(t *testing.T) {
	tm := Template("t", `<a href="{{x .Href}}"/>`)
	if got := string(Render(tm, map[string]string{"Href": "h?a=1&b=<2>"})); got != `<a href="h?a=1&amp;b=&lt;2&gt;"/>` {
		t.Errorf("Render = %s", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Render of a failing template did not panic")
		}
	}()
	Render(tm, struct{ Other string }{})
}

func TestResolveBase(t *testing.T) {
	r := httptest.NewRequest("GET", "http://fake.test:8080/caps", nil)
	for base, want := range map[string]string{
		"":                   "https://canonical.example",
		"request":            "http://fake.test:8080",
		"https://other.test": "https://other.test",
	} {
		if got := ResolveBase(base, "https://canonical.example", r); got != want {
			t.Errorf("ResolveBase(%q) = %q, want %q", base, got, want)
		}
	}
}
