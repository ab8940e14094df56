package filestore

import "time"

// Test hooks: what the tests read and no caller needs.

// WithNow sets the clock that paces the change checks and stamps Created
// (time.Now when nil).
func WithNow(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}
