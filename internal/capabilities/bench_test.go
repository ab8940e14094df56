package capabilities

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/hexprox/hexprox/internal/fakehexagon"
)

// bigDoc grows the realistic document to about size bytes by repeating its
// layer with new names, as a catalogue with many layers would.
func bigDoc(b *testing.B, size int) []byte {
	doc := fakeDoc(b, fakehexagon.Switches{TokenInCapabilities: true})
	start := bytes.Index(doc, []byte("<Layer>"))
	end := bytes.Index(doc, []byte("</Layer>")) + len("</Layer>")
	layer := doc[start:end]
	var layers bytes.Buffer
	for i := 0; layers.Len()+len(doc) < size; i++ {
		layers.Write(bytes.Replace(layer, []byte("HxGN_Imagery"), []byte(fmt.Sprintf("Layer_%d", i)), -1))
	}
	out := append([]byte(nil), doc[:end]...)
	out = append(out, layers.Bytes()...)
	return append(out, doc[end:]...)
}

func benchRewrite(b *testing.B, doc []byte) {
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Rewrite(doc, wmtsOptions()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRewriteRealistic rewrites the fake's document: one layer, two
// templates, all 22 WebMercator levels (12 KB).
func BenchmarkRewriteRealistic(b *testing.B) {
	benchRewrite(b, fakeDoc(b, fakehexagon.Switches{TokenInCapabilities: true}))
}

// BenchmarkRewrite5MB rewrites a 5 MB document (hundreds of layers).
func BenchmarkRewrite5MB(b *testing.B) { benchRewrite(b, bigDoc(b, 5<<20)) }

// BenchmarkRender is the per-request cost of a cache hit.
func BenchmarkRender(b *testing.B) {
	d, err := Rewrite(fakeDoc(b, fakehexagon.Switches{}), wmtsOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(d.Bytes("https://proxy.example/wmts/aWQ/c2VjcmV0"))))
	b.ReportAllocs()
	for b.Loop() {
		d.Bytes("https://proxy.example/wmts/aWQ/c2VjcmV0")
	}
}
