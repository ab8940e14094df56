package keys

import (
	"errors"
	"strings"
	"time"
)

// lifecycle is r's refusal at now (nil: r serves): the one place a
// status becomes a LifecycleError, for a record and for the attributes
// a listing shows alike.
func lifecycle(r Record, now time.Time) error {
	switch s := r.Status(now); s {
	case Active:
		return nil
	case Expired:
		return &LifecycleError{Status: s, At: r.Expires, Contact: r.Contact}
	case NotYetValid:
		return &LifecycleError{Status: s, At: r.NotBefore, Contact: r.Contact}
	default:
		return &LifecycleError{Status: s, Contact: r.Contact}
	}
}

// ErrInactive is matched (errors.Is) by every *LifecycleError.
var ErrInactive = errors.New("keys: the key does not serve")

// LifecycleError says why a key that exists does not serve: it is revoked,
// expired or not yet valid. The server answers it with 403 and Error's
// text, which is safe to show the key holder.
type LifecycleError struct {
	Status  Status    // Revoked, Expired or NotYetValid
	At      time.Time // Expires or NotBefore, for those
	Contact string    // the record's contact, if known
}

func (e *LifecycleError) Error() string {
	var b strings.Builder
	b.WriteString("this API key ")
	switch e.Status {
	case Revoked:
		b.WriteString("has been revoked")
	case Expired:
		b.WriteString("expired on " + e.At.UTC().Format("2006-01-02 15:04 MST"))
	case NotYetValid:
		b.WriteString("is not valid before " + e.At.UTC().Format("2006-01-02 15:04 MST"))
	default:
		b.WriteString("does not serve")
	}
	if e.Contact != "" {
		b.WriteString("; contact " + e.Contact)
	}
	return b.String()
}

// Is reports whether target is ErrInactive.
func (e *LifecycleError) Is(target error) bool { return target == ErrInactive }
