package failure

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const secretQuery = "?client_secret=very-secret-value&access_token=tok-secret-value"

// roundTripFunc lets a test stand in a transport that fails on purpose.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFromRoundTrip(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	classified := New(Forbidden, "refused upstream of the transport", nil)

	cases := []struct {
		name     string
		do       func() error
		kind     Kind // when the result is an *Error
		canceled bool // the result is context.Canceled itself
		same     *Error
		message  string
	}{
		{
			name: "connection refused",
			do: func() error {
				_, err := http.Get(goneURL + secretQuery)
				return err
			},
			kind:    UpstreamFailed,
			message: "Hexagon is unreachable",
		},
		{
			name: "client timeout",
			do: func() error {
				_, err := (&http.Client{Timeout: 50 * time.Millisecond}).Get(slow.URL + secretQuery)
				return err
			},
			kind:    UpstreamTimeout,
			message: "Hexagon did not answer in time",
		},
		{
			name: "context deadline",
			do: func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, slow.URL+secretQuery, nil)
				_, err := http.DefaultClient.Do(req)
				return err
			},
			kind:    UpstreamTimeout,
			message: "Hexagon did not answer in time",
		},
		{
			name: "caller went away",
			do: func() error {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, slow.URL+secretQuery, nil)
				_, err := http.DefaultClient.Do(req)
				return err
			},
			canceled: true,
		},
		{
			name: "already classified beneath the transport",
			do: func() error {
				c := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, classified })}
				_, err := c.Get(slow.URL + secretQuery)
				return err
			},
			same: classified,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.do()
			if raw == nil {
				t.Fatal("the round trip did not fail")
			}
			if !strings.Contains(raw.Error(), "very-secret-value") && tc.same == nil {
				t.Fatalf("test premise: the raw error should hold the URL, got %v", raw)
			}
			err := FromRoundTrip(raw, "Hexagon")
			for _, s := range []string{"very-secret-value", "tok-secret-value", "client_secret"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("classified error leaks %q: %v", s, err)
				}
			}
			switch {
			case tc.canceled:
				if err != context.Canceled {
					t.Fatalf("want context.Canceled itself, got %#v", err)
				}
			case tc.same != nil:
				if err != error(tc.same) {
					t.Fatalf("want the *Error passed through, got %#v", err)
				}
			default:
				var fe *Error
				if !errors.As(err, &fe) || fe.Kind != tc.kind || fe.Message != tc.message {
					t.Fatalf("got %#v, want kind %v message %q", err, tc.kind, tc.message)
				}
				if fe.Err == nil {
					t.Fatal("the cause must be kept for the logs")
				}
			}
		})
	}
}

func TestFromRoundTripNamesTheUpstream(t *testing.T) {
	err := FromRoundTrip(errors.New("dial tcp: connection refused"), "Hexagon's token endpoint")
	if fe := As(err); fe.Kind != UpstreamFailed || fe.Message != "Hexagon's token endpoint is unreachable" {
		t.Fatalf("got %#v", fe)
	}
	if FromRoundTrip(nil, "Hexagon") != nil {
		t.Fatal("nil must stay nil")
	}
}
