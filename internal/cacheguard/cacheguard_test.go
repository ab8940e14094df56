package cacheguard_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/cacheguard"
)

func TestMain(m *testing.M) { os.Exit(cacheguard.Run(m)) }

// child is set in the test binary this package's tests start again.
const child = "HEXPROX_CACHEGUARD_CHILD"

// TestChild is what a careless test does when the child variable says
// "write": it leaves a usage row where a proxy without USAGE_DIR would.
func TestChild(t *testing.T) {
	if os.Getenv(child) != "write" {
		t.Skip("run by TestRunFailsAWriteToTheUserCache")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "hexprox", "usage")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "row.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The guard fails a run whose test writes under the (moved) user cache,
// names what it wrote, and leaves this process's own cache alone; a run
// that writes nothing passes.
func TestRunFailsAWriteToTheUserCache(t *testing.T) {
	ours, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	run := func(mode string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), child+"="+mode)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := run("write")
	if err == nil || !strings.Contains(out, "cacheguard: tests wrote") || !strings.Contains(out, filepath.Join("hexprox", "usage", "row.json")) {
		t.Fatalf("a test that wrote a usage row to the user cache: %v\n%s", err, out)
	}
	if written := cacheguard.Written(ours); len(written) != 0 {
		t.Fatalf("the child wrote into its parent's cache: %v", written)
	}
	if out, err := run("skip"); err != nil {
		t.Fatalf("a run that writes nothing failed: %v\n%s", err, out)
	}
}
