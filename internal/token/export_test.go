package token

// Test hooks: what the tests read and no caller needs.

// Len returns the number of sources held.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lru.Len()
}

// UsesPost reports whether the endpoint has been found to need POST.
func (e *Endpoint) UsesPost() bool { return e.usePost.Load() }

// Down reports whether the store is considered down.
func (h *StoreHealth) Down() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}
