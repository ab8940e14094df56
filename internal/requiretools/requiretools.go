// Package requiretools decides what a test does when an outside tool it
// drives (Azurite, GDAL, OWSLib, node, Chromium) is not installed: skip,
// so that `go test ./...` runs anywhere, unless HEXPROX_REQUIRE_TOOLS is
// set, as scripts/test sets it, where a missing tool fails the test
// rather than let a suite pass having tested nothing.
package requiretools

import (
	"os"
	"testing"
)

// Env is the variable that makes a missing tool a failure.
const Env = "HEXPROX_REQUIRE_TOOLS"

// Missing ends t for a missing tool: t.Fatalf when Env is set, else
// t.Skipf, with the same message.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(Env) != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
