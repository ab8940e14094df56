package failure

import (
	"testing"
	"time"
)

func TestRetryAfterRoundsUpToWholeSeconds(t *testing.T) {
	for wait, want := range map[time.Duration]string{
		0:                      "1",
		-time.Second:           "1",
		time.Millisecond:       "1",
		time.Second:            "1",
		time.Second + 1:        "2",
		59*time.Second + 900e6: "60",
		90 * time.Minute:       "5400",
	} {
		if got := RetryAfter(wait); got != want {
			t.Errorf("RetryAfter(%v) = %s, want %s", wait, got, want)
		}
	}
}
