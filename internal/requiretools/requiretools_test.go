package requiretools

import (
	"testing"
)

// recorder is a testing.TB that records how it was ended.
type recorder struct {
	testing.TB
	fatal, skip bool
}

func (r *recorder) Helper()                       {}
func (r *recorder) Fatalf(string, ...any)         { r.fatal = true }
func (r *recorder) Skipf(format string, a ...any) { r.skip = true }

func TestMissingSkipsUnlessToolsAreRequired(t *testing.T) {
	t.Setenv(Env, "")
	r := &recorder{TB: t}
	Missing(r, "no %s", "gdalinfo")
	if !r.skip || r.fatal {
		t.Fatalf("without %s: skip %v, fatal %v; want a skip", Env, r.skip, r.fatal)
	}
	t.Setenv(Env, "1")
	r = &recorder{TB: t}
	Missing(r, "no %s", "gdalinfo")
	if !r.fatal {
		t.Fatalf("with %s set: fatal %v; want a failure", Env, r.fatal)
	}
}
