package failure

import (
	"context"
	"errors"
	"net"
	"net/url"
)

// FromRoundTrip classifies the error of a failed HTTP round trip (what
// http.Client.Do or a RoundTripper returned) to the upstream named what,
// e.g. "Hexagon" or "Hexagon's token endpoint"; what is shown to clients.
//
//   - nil stays nil.
//   - An *Error anywhere in err's chain is returned unchanged (a token
//     source beneath the transport already classified it).
//   - A *url.Error is dropped and only its cause kept: its URL may carry
//     a client secret or an access token, and so may its Error text.
//   - context.Canceled is returned as it is: the caller went away and
//     there is no one to answer.
//   - context.DeadlineExceeded and net.Error timeouts become
//     UpstreamTimeout ("<what> did not answer in time").
//   - Everything else becomes UpstreamFailed ("<what> is unreachable").
//
// The cause kept for the logs is the error beneath any *url.Error; callers
// must not wrap a URL into err's text themselves.
func FromRoundTrip(err error, what string) error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return New(UpstreamTimeout, what+" did not answer in time", err)
	}
	return New(UpstreamFailed, what+" is unreachable", err)
}
