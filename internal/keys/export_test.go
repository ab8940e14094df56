package keys

// Test hooks: what the tests read and no caller needs.

// Origins returns the key's own allowed origins (ALLOWED_ORIGINS entries).
// The slice must not be modified.
func (k *Key) Origins() []string { return k.rec.Origins }
