package fakeprovider

import "sync"

// Keys is a fake's register of API keys, each with what the fake keeps
// for it (V: true for a plain key, the mosaics it may see for Planet),
// safe for concurrent use. The zero value is an empty register.
type Keys[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

// Add registers key with v, replacing what it had.
func (k *Keys[V]) Add(key string, v V) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]V{}
	}
	k.m[key] = v
}

// Revoke forgets key.
func (k *Keys[V]) Revoke(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
}

// Get returns what key was added with, and whether it is registered.
func (k *Keys[V]) Get(key string) (V, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok
}
