package capabilities

// Test hooks: what the tests read and no caller needs.

// Insertions returns how many URLs were rewritten.
func (d *Document) Insertions() int { return len(d.parts) - 1 }
