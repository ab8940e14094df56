// Package azuritetest starts Azurite's Table service (the real Azure
// Storage emulator, installed from npm into tools/ by scripts/test) for
// tests.
package azuritetest

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/requiretools"
)

// Azurite is a running Azurite Table service on loopback.
type Azurite struct {
	t    testing.TB
	bin  string
	dir  string
	Port int
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// Start starts Azurite on a free port, or skips the test when it is not
// installed — unless HEXPROX_REQUIRE_TOOLS is set (scripts/test sets
// it), in which case its absence fails the test.
func Start(t testing.TB) *Azurite {
	t.Helper()
	bin := find()
	if bin == "" {
		requiretools.Missing(t, "azurite-table not found under tools/node_modules; ./scripts/test installs it")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	a := &Azurite{t: t, bin: bin, dir: t.TempDir(), Port: port}
	a.start()
	t.Cleanup(a.Stop)
	return a
}

func find() string {
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "tools", "node_modules", ".bin", "azurite-table")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func (a *Azurite) start() {
	a.t.Helper()
	a.cmd = exec.Command(a.bin, "--tableHost", "127.0.0.1", "--tablePort", strconv.Itoa(a.Port),
		"--inMemoryPersistence", "--skipApiVersionCheck", "--silent", "--disableTelemetry")
	a.cmd.Dir = a.dir
	a.out.Reset()
	a.cmd.Stdout, a.cmd.Stderr = &a.out, &a.out
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(a.Endpoint() + "/Tables")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.Stop()
	a.t.Fatalf("azurite did not start within 30s:\n%s", a.out.String())
}

// Endpoint is the table service URL of the development account.
func (a *Azurite) Endpoint() string {
	return "http://127.0.0.1:" + strconv.Itoa(a.Port) + "/devstoreaccount1"
}

// ConnectionString is the development account's connection string.
func (a *Azurite) ConnectionString() string {
	return azstorage.DevelopmentConnectionString(a.Endpoint())
}

// Rows returns table's entities as stored (one JSON object each), for
// tests that look at what was written rather than what a client reads
// back. Any error fails t.
func (a *Azurite) Rows(t testing.TB, table string) []string {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(a.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for pager := svc.NewClient(table).NewListEntitiesPager(nil); pager.More(); {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entities {
			rows = append(rows, string(e))
		}
	}
	return rows
}

// Stop stops Azurite (its in-memory data is lost).
func (a *Azurite) Stop() {
	if a.cmd != nil && a.cmd.Process != nil && a.cmd.ProcessState == nil {
		a.cmd.Process.Kill()
		a.cmd.Wait()
	}
}

// Restart starts Azurite again on the same port, empty.
func (a *Azurite) Restart() {
	a.t.Helper()
	a.Stop()
	a.start()
}
