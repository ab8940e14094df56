package ows

import "testing"

func TestParams(t *testing.T) {
	p, err := Params("service=WMS&Layers=a&LAYERS=b&access_token=x&Access_Token=y&empty=")
	if err != nil {
		t.Fatal(err)
	}
	if p["SERVICE"] != "WMS" || p["LAYERS"] != "a,b" || p["EMPTY"] != "" || len(p) != 3 {
		t.Fatalf("%v", p)
	}
	if _, ok := p["ACCESS_TOKEN"]; ok {
		t.Fatal("client token kept")
	}
	if _, err := Params("a=%zz"); err == nil {
		t.Fatal("bad escape accepted")
	}
	if _, err := Params("a=1;b=2"); err == nil {
		t.Fatal("bad escape accepted")
	}
}

func TestIdentifier(t *testing.T) {
	for s, want := range map[string]bool{"HxGN_Imagery": true, "EPSG:3857": true, "a.b-c": true, "": false, "a..b": false, "a/b": false, "a b": false, "a,b": false, "a&b": false} {
		if Identifier(s) != want {
			t.Errorf("Identifier(%q) != %v", s, want)
		}
	}
}
