package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/fakeprovider/vexcel"
	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/tokenstore/azuretable"
)

const tokenLife = time.Hour

// newCluster is a world for proxy instances sharing one token table on
// Azurite, in front of one fake Hexagon, on a settable clock.
func newCluster(t *testing.T) *harness {
	c := newWorld(t, worldOptions{azurite: true, clock: testclock.New(time.Now()), lifetime: tokenLife})
	// As the app does at start, so that the first requests find the table.
	svc, err := azstorage.NewServiceClient(config.Storage{ConnectionString: c.az.ConnectionString()})
	if err != nil {
		t.Fatal(err)
	}
	if err := azuretable.New(svc, "hexproxtokens").EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && strings.Contains(c.logs.String(), "token store unreachable") {
			t.Log("the token store was taken for down during the test (a loaded machine?)")
		}
	})
	return c
}

// instance starts one more proxy instance sharing the token table: its
// own memory cache and store health, as a separate process would have;
// extra settings, if any, go beside the cluster's.
func (c *harness) instance(extra ...string) *httptest.Server {
	c.t.Helper()
	// Generous, so that a loaded test machine is not taken for an outage.
	env := map[string]string{"TOKEN_STORE_TIMEOUT": "5s", "TOKEN_TIMEOUT": "5s", "USAGE": "off"}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return c.start(env, func(o *app.Options) {
		o.TokenStoreRetry = 5 * time.Second
	}).Server
}

var noRedirects = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func tileURL(srv *httptest.Server, id, secret string) string {
	return srv.URL + "/wmts/" + credential.Encode(id) + "/" + credential.Encode(secret) + tilePath
}

// spread sends n concurrent tile requests for the test credential
// round-robin over the instances and fails on any answer but a redirect.
func (c *harness) spread(n int, insts []*httptest.Server) {
	c.t.Helper()
	c.spreadAs(clientID, clientSecret, n, insts, http.StatusFound)
}

// spreadAs is spread for any credential and expected status.
func (c *harness) spreadAs(id, secret string, n int, insts []*httptest.Server, want int) {
	c.t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := noRedirects.Get(tileURL(insts[i%len(insts)], id, secret))
			if err != nil {
				c.t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				c.t.Errorf("status %d, want %d", resp.StatusCode, want)
			}
		}()
	}
	wg.Wait()
}

// rows returns the token table's raw rows.
func (c *harness) rows() []string {
	c.t.Helper()
	return c.az.Rows(c.t, "hexproxtokens")
}

func settle(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInstancesShareOneTokenThroughAzurite(t *testing.T) {
	c := newCluster(t)
	insts := []*httptest.Server{c.instance(), c.instance(), c.instance(), c.instance()}
	c.fake.Set(fakehexagon.Switches{TokenDelay: 50 * time.Millisecond})

	// A row is written only once Hexagon has accepted the credential: the
	// first instance warms it with one token request...
	c.spread(100, insts[:1])
	if n := c.fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("100 concurrent requests for a fresh credential on one instance made %d token requests, want 1", n)
	}
	// ...and the other instances, cold, take the token from the row.
	c.spread(300, insts[1:])
	if n := c.fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("300 concurrent requests over 3 cold instances made %d more token requests, want 0", n-1)
	}
	t.Logf("cold: 100 requests on the first instance, then 300 over 3 cold instances: 1 token request")

	// Past the refresh point every instance asks; exactly one refreshes.
	c.clk.Advance(tokenLife/2 + tokenLife/20)
	c.spread(200, insts)
	settle(t, "the half-life refresh", func() bool { return c.fake.TokenRequests.Load() >= 2 })
	for range 3 { // the others look again and pick the new token up
		c.clk.Advance(2 * time.Second)
		c.spread(40, insts)
		time.Sleep(150 * time.Millisecond)
	}
	if n := c.fake.TokenRequests.Load(); n != 2 {
		t.Fatalf("the half-life refresh across 4 instances made %d token requests in all, want 2", n)
	}
	if _, expiry, _ := c.fake.CurrentToken(clientID); !expiry.After(c.clk.Now().Add(tokenLife / 2)) {
		t.Fatal("the refresh did not renew the token at Hexagon")
	}

	// A cold instance started later serves its first tile without asking Hexagon.
	late := c.instance()
	resp, err := noRedirects.Get(tileURL(late, clientID, clientSecret))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("late instance: %v %v", resp, err)
	}
	resp.Body.Close()
	live, _, _ := c.fake.CurrentToken(clientID)
	if !strings.Contains(resp.Header.Get("Location"), live) {
		t.Fatal("late instance handed out a token other than the live one")
	}
	if n := c.fake.TokenRequests.Load(); n != 2 {
		t.Fatalf("a late instance made a token request (%d in all)", n)
	}

	// What the table holds, read raw, has neither secret nor token in clear.
	rows := c.rows()
	if len(rows) != 1 {
		t.Fatalf("table holds %d rows, want 1", len(rows))
	}
	raw := strings.Join(rows, "")
	for _, s := range []string{clientID, clientSecret, credential.Encode(clientID), credential.Encode(clientSecret), live} {
		if strings.Contains(raw, s) {
			t.Fatalf("table holds %q in clear: %s", s, raw)
		}
	}
}

func TestInstancesNewCredentialCostsAtMostOneTokenRequestEach(t *testing.T) {
	c := newCluster(t)
	insts := []*httptest.Server{c.instance(), c.instance(), c.instance(), c.instance()}
	c.fake.Set(fakehexagon.Switches{TokenDelay: 50 * time.Millisecond})
	// Every instance cold, a never-seen credential, all at once: no row to
	// coordinate on yet, so each instance may ask Hexagon once.
	c.spread(400, insts)
	n := c.fake.TokenRequests.Load()
	if n < 1 || n > int64(len(insts)) {
		t.Fatalf("400 concurrent requests for a never-seen credential over %d cold instances made %d token requests, want 1 to %d", len(insts), n, len(insts))
	}
	if rows := c.rows(); len(rows) != 1 {
		t.Fatalf("table holds %d rows, want 1", len(rows))
	}
	// Once per credential, ever: more requests, and a new instance, cost nothing.
	c.spread(200, append(insts, c.instance()))
	if m := c.fake.TokenRequests.Load(); m != n {
		t.Fatalf("after the first use, %d more token requests", m-n)
	}
	t.Logf("never-seen credential: 400 requests over 4 cold instances, %d token requests", n)
}

func TestInstancesRefusedCredentialsLeaveNoRows(t *testing.T) {
	c := newCluster(t)
	insts := []*httptest.Server{c.instance(), c.instance()}
	c.spread(1, insts) // one accepted credential: one row
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range 300 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.spreadAs(fmt.Sprintf("random-%d", i), fmt.Sprintf("guess-%d", i), 1, insts[i%2:i%2+1], http.StatusForbidden)
		}()
	}
	wg.Wait()
	if n := c.fake.TokenRequests.Load(); n != 301 {
		t.Fatalf("%d token requests, want 301 (one per credential)", n)
	}
	if rows := c.rows(); len(rows) != 1 {
		t.Fatalf("after 300 refused credentials the table holds %d rows, want 1 (the accepted one)", len(rows))
	}
}

func TestInstancesKeepServingWhenAzuriteStops(t *testing.T) {
	c := newCluster(t)
	a, b := c.instance(), c.instance()
	c.spread(20, []*httptest.Server{a, b})

	c.az.Stop()
	// Warm instances serve from memory...
	c.spread(20, []*httptest.Server{a, b})
	// ...and a credential no instance has seen still works, straight from Hexagon.
	resp, err := noRedirects.Get(tileURL(a, "second-client", "second-secret"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("new credential while the table is down: %v %v", resp, err)
	}
	resp.Body.Close()
	if !strings.Contains(c.logs.String(), "token store unreachable") {
		t.Fatal("the outage was not logged")
	}

	// Azurite comes back empty; past the retry and refresh points, the
	// next refresh goes through it and a new instance shares it again.
	c.az.Restart()
	c.clk.Advance(tokenLife/2 + tokenLife/20)
	c.spread(10, []*httptest.Server{a})
	settle(t, "a refresh written to the restarted table", func() bool {
		svc, _ := aztables.NewServiceClientFromConnectionString(c.az.ConnectionString(), nil)
		_, err := svc.NewClient("hexproxtokens").GetEntity(context.Background(), token.RowKey(credential.Credential{ID: clientID, Secret: clientSecret}, ""), "token", nil)
		return err == nil
	})
	before := c.fake.TokenRequests.Load()
	late := c.instance()
	resp, err = noRedirects.Get(tileURL(late, clientID, clientSecret))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("after restart: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := c.fake.TokenRequests.Load() - before; n != 0 {
		t.Fatalf("sharing did not resume: the new instance made %d token requests", n)
	}
	if !strings.Contains(c.logs.String(), "reachable again") {
		t.Fatal("recovery not logged")
	}
}

// A provider's login is shared as Hexagon's tokens are: instances on one
// token table log in to Vexcel once between them, and the table holds the
// token sealed, never the password.
func TestInstancesShareAVexcelLogin(t *testing.T) {
	c := newCluster(t)
	fake, up := vexcelUpstream(t, c.clk.Now)
	key := c.addVexcelKey()
	var insts []*httptest.Server
	for range 3 {
		insts = append(insts, c.instance("PROVIDER_VEXCEL_API_URL", up))
	}
	tile := "/~api" + vexcel.WMTSPath + "?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=urban&STYLE=RGB&TILEMATRIXSET=urban&TILEMATRIX=5&TILEROW=10&TILECOL=12&FORMAT=image/jpeg"
	for i, inst := range insts {
		resp, err := noRedirects.Get(inst.URL + "/v2/wmts/" + key + tile)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("instance %d: %d", i, resp.StatusCode)
		}
	}
	if n := fake.Logins.Load(); n != 1 {
		t.Fatalf("3 instances logged in %d times, want once between them", n)
	}
	c.noteSecret(fake.LastToken())
	rows := c.rows()
	if len(rows) == 0 {
		t.Fatal("the token table holds no row: the login was not shared through it")
	}
	for _, row := range rows {
		if strings.Contains(row, vexcelPassword) || strings.Contains(row, fake.LastToken()) {
			t.Fatalf("the token table holds the password or the token in clear:\n%s", row)
		}
	}
}
