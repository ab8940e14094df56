//go:build unix

package usage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A usage directory another user could have planted rows in is refused,
// for reads and writes alike.
func TestDirSinkRefusesADirectoryOthersCanWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "usage")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d := &DirSink{Dir: dir}
	if err := d.Write(context.Background(), []Row{sinkRow(sinkHour, "one", TilesStreamed, 1)}); err != nil {
		t.Fatalf("our own 0700 directory: %v", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(context.Background(), []Row{sinkRow(sinkHour, "one", TilesStreamed, 1)}); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("a world-writable directory: %v", err)
	}
	if _, err := d.Read(context.Background(), Query{From: sinkHour, To: sinkHour.Add(1)}); err == nil {
		t.Fatal("a world-writable directory was read")
	}
	os.Chmod(dir, 0o700)
	if os.Getuid() != 0 {
		t.Skip("not root: cannot give the directory to another user")
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Skipf("chown: %v", err)
	}
	if err := d.Write(context.Background(), []Row{sinkRow(sinkHour, "one", TilesStreamed, 1)}); err == nil || !strings.Contains(err.Error(), "belongs to user 65534") {
		t.Fatalf("another user's directory: %v", err)
	}
}
