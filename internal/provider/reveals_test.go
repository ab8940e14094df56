package provider

import (
	"net/url"
	"strings"
	"testing"
)

func TestReveals(t *testing.T) {
	const key = "NMKEY+fedcba/9876543210="
	for _, doc := range []string{
		"…/apikey/" + key + "/…",
		"…/apikey/" + url.PathEscape(key) + "/…",
		"…?apikey=" + url.QueryEscape(key),
		"…/apikey/NMKEY%2Bfedcba%2F9876543210%3D/…",
		"…/apikey/NMKEY%252Bfedcba%252F9876543210%253D/…", // escaped twice
		"…/apikey/nmkey+FEDCBA/9876543210=/…",             // another case
		"…<x>&#x4E;MKEY+fedcba/9876543210&#61;</x>",       // character references
		"…<x>NMKEY+fedcba&#x2F;9876543210=</x>",
		"…/apikey/%4EMKEY%2Bfedcba%2F9876543210%3D/…",    // a letter escaped: its case is the escape's
		"…/apikey/%254EMKEY+fedcba/9876543210=/…",        // the same, escaped twice
		"…?apikey=nmkey%2B%46%45DCBA%2F9876543210%3D&x=", // escaped letters in another case
	} {
		if !Reveals([]byte(doc), key) {
			t.Errorf("Reveals(%q) = false", doc)
		}
	}
	for _, doc := range []string{"", "…/apikey/REDACTED/…", "NMKEY+fedcba/987654321", strings.Repeat("%", 100)} {
		if Reveals([]byte(doc), key) {
			t.Errorf("Reveals(%q) = true", doc)
		}
	}
	if Reveals([]byte("anything"), "") {
		t.Error("an empty credential revealed")
	}
}
