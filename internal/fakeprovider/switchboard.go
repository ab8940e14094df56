package fakeprovider

import "sync"

// Switchboard holds a fake's switches (T is its Switches struct) for
// concurrent use: a test sets them while handlers read them. The zero
// value holds the zero T, the healthy service.
type Switchboard[T any] struct {
	mu sync.Mutex
	sw T
}

// Set replaces the switches.
func (s *Switchboard[T]) Set(sw T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sw = sw
}

// Get returns the switches as last set.
func (s *Switchboard[T]) Get() T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sw
}
