package logwriter

// Test hooks: what the tests read and no caller needs.

// Dropped returns how many lines have been dropped since New. It is safe
// to call at any time.
func (w *Writer) Dropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}
