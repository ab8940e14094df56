package token

// Test hooks: what the tests read and no caller needs.

// UsesPost reports whether the endpoint has been found to need POST.
func (e *Endpoint) UsesPost() bool { return e.usePost.Load() }

// Down reports whether the store is considered down.
func (h *StoreHealth) Down() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}
