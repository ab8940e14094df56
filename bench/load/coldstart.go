package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/bench/internal/procstat"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
)

// ColdStart is a new instance serving its first tile with the token
// already in the shared table.
type ColdStart struct {
	Starts int     `json:"starts"`
	Median float64 `json:"exec_to_first_tile_median_ms"`
	P90    float64 `json:"exec_to_first_tile_p90_ms"`
	// WarmMedian is a warm instance's first request on a new connection.
	WarmMedian float64 `json:"warm_first_request_median_ms"`
	// TokenRequests is how many token requests Hexagon saw during the
	// cold starts: 0 when every instance took the token from the table.
	TokenRequests int64 `json:"token_requests"`
}

// Ratio is the cold start over the warm instance's first request.
func (c *ColdStart) Ratio() float64 {
	if c.WarmMedian == 0 {
		return 0
	}
	return c.Median / c.WarmMedian
}

var errNoAzurite = errors.New("azurite-table is not installed under tools/node_modules (./scripts/test installs it)")

// devAccount is Azurite's well-known development account (published by
// Microsoft, not a secret).
const devAccount = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
	"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"

// coldStart runs Azurite and an in-process fake Hexagon (to count its
// token requests), warms one instance so that the table holds a token,
// stops it, then starts n instances one after another on the same table
// and times each from exec to its first tile answered. After each, it
// times one more request on a new connection to the now warm instance.
func coldStart(handler, tmp string, n int) (*ColdStart, error) {
	azurite, err := filepath.Abs(filepath.Join("tools", "node_modules", ".bin", "azurite-table"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(azurite); err != nil {
		return nil, errNoAzurite
	}
	azAddr, err := procstat.FreeAddr()
	if err != nil {
		return nil, err
	}
	host, port := splitPort(azAddr)
	dir := filepath.Join(tmp, "azurite")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	az := exec.Command(azurite, "--tableHost", host, "--tablePort", port, "--inMemoryPersistence",
		"--skipApiVersionCheck", "--silent", "--disableTelemetry")
	az.Dir = dir
	az.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := az.Start(); err != nil {
		return nil, err
	}
	azs := &server{name: "azurite", cmd: az}
	defer azs.stop()
	endpoint := "http://" + azAddr + "/devstoreaccount1"
	if err := waitHTTP(endpoint + "/Tables"); err != nil {
		return nil, fmt.Errorf("azurite: %w", err)
	}

	fake := fakehexagon.New(fakehexagon.Options{})
	fake.AddClient(clientID, clientSecret)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fs := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go fs.Serve(ln)
	defer fs.Close()

	tilePath := "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret) + tile
	instance := func() (*server, string, error) {
		addr, err := procstat.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		_, p := splitPort(addr)
		s, err := start("cold", handler, []string{"PORT=" + p, "HEXAGON_URL=http://" + ln.Addr().String(),
			"TOKEN_STORE=table", "TOKEN_TABLE_CONNECTION=" + devAccount + "TableEndpoint=" + endpoint + ";",
			"TOKEN_TABLE_NAME=benchtokens", "USAGE_DIR=" + filepath.Join(tmp, "usage-cold")})
		return s, addr, err
	}

	// Warm: one instance fetches the token and shares it through the table.
	first, addr, err := instance()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	_, err = firstAnswer(addr, tilePath, t0)
	if err == nil {
		err = waitShared(endpoint)
	}
	first.stop()
	if err != nil {
		return nil, fmt.Errorf("warming the table: %w", err)
	}
	if got := fake.TokenRequests.Load(); got != 1 {
		return nil, fmt.Errorf("warming the table took %d token requests, want 1", got)
	}

	before := fake.TokenRequests.Load()
	var cold, warm []float64
	for range n {
		t0 := time.Now()
		s, addr, err := instance()
		if err != nil {
			return nil, err
		}
		took, err := firstAnswer(addr, tilePath, t0)
		if err == nil {
			var w time.Duration
			w, err = firstAnswer(addr, tilePath, time.Now())
			warm = append(warm, ms(w))
		}
		s.stop()
		if err != nil {
			return nil, err
		}
		cold = append(cold, ms(took))
	}
	slices.Sort(cold)
	slices.Sort(warm)
	return &ColdStart{Starts: n, Median: cold[len(cold)/2], P90: cold[len(cold)*9/10], WarmMedian: warm[len(warm)/2],
		TokenRequests: fake.TokenRequests.Load() - before}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// firstAnswer sends GET path to addr on a new connection, again and again
// until the server listens, and returns the time from t0 to a 302 status
// line. Any other answer is an error.
func firstAnswer(addr, path string, t0 time.Time) (time.Duration, error) {
	for time.Since(t0) < 10*time.Second {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n", path)
		line, err := bufio.NewReader(c).ReadString('\n')
		took := time.Since(t0)
		c.Close()
		if err != nil {
			return 0, err
		}
		if !strings.Contains(line, " 302 ") {
			return 0, fmt.Errorf("first tile answered %q", strings.TrimSpace(line))
		}
		return took, nil
	}
	return 0, fmt.Errorf("%s did not answer within 10 s", addr)
}

// waitShared waits until the token table holds a row: the warm instance
// shares a fetched token in the background.
func waitShared(endpoint string) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n, err := tableRows(endpoint, "benchtokens"); err == nil && n > 0 {
			return nil
		}
	}
	return errors.New("no token row in the table after 10 s")
}

// tableRows counts the rows of table (up to one page).
func tableRows(endpoint, table string) (int, error) {
	svc, err := aztables.NewServiceClientFromConnectionString(devAccount+"TableEndpoint="+endpoint+";", nil)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	top := int32(10)
	page, err := svc.NewClient(table).NewListEntitiesPager(&aztables.ListEntitiesOptions{Top: &top}).NextPage(ctx)
	if err != nil {
		return 0, err
	}
	return len(page.Entities), nil
}
