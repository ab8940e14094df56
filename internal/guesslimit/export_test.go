package guesslimit

// Test hooks: what the tests read and no caller needs.

// Len returns the number of addresses (keys) tracked, at most MaxAddrs.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
