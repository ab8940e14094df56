// Package cacheguard keeps a test binary away from the user's cache
// directory, where a proxy started without USAGE_DIR keeps its usage
// rows (hexprox/usage): a test that forgot USAGE_DIR would otherwise add
// rows to the user's own usage report on every run.
package cacheguard

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Dir is where, under the user's cache directory, HexProx keeps what it
// keeps there (internal/app: usage rows without USAGE_DIR).
const Dir = "hexprox"

// Run runs m's tests with the user's cache directory (XDG_CACHE_HOME,
// which every process a test starts inherits) moved to an empty
// temporary one, and fails the run if anything was written under its
// hexprox directory: every test that starts a proxy, the handler binary
// or the demo must give it a USAGE_DIR of its own. Go's build cache
// (GOCACHE) stays where it was, so that a test that builds the handler
// is not slowed by a cold cache. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(cacheguard.Run(m)) }
//
// Where os.UserCacheDir does not follow XDG_CACHE_HOME (macOS, Windows)
// the tests run unguarded.
func Run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hexprox-test-cache")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cacheguard:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if os.Getenv("GOCACHE") == "" {
		if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
			os.Setenv("GOCACHE", strings.TrimSpace(string(out)))
		}
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	if got, err := os.UserCacheDir(); err != nil || got != dir {
		return m.Run()
	}
	code := m.Run()
	if written := Written(dir); len(written) > 0 {
		fmt.Fprintf(os.Stderr, "cacheguard: tests wrote to the user's cache directory, where a proxy without USAGE_DIR keeps usage rows; give every proxy, handler or demo a USAGE_DIR of its own (t.TempDir()):\n  %s\n", strings.Join(written, "\n  "))
		return 1
	}
	return code
}

// Written lists what is under cache's hexprox directory (its files, or
// the directory itself when it holds none), relative to cache.
func Written(cache string) []string {
	var found []string
	root := filepath.Join(cache, Dir)
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && (!d.IsDir() || path == root) {
			rel, _ := filepath.Rel(cache, path)
			found = append(found, rel)
		}
		return nil
	})
	if len(found) > 1 {
		found = found[1:] // the files say it
	}
	return found
}
