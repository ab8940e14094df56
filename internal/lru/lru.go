// Package lru is a map with least-recently-used eviction at a fixed
// capacity, the one bound that the proxy's per-credential table, its key
// cache, its cache of stored usage and the in-memory token store
// (tokenstore.Memory) share.
package lru

// Cache maps string keys to values of type V and holds at most its
// capacity: adding one more drops the least recently used. Get, Put and
// Remove take constant time. The zero value is not usable; call New.
//
// A Cache is not safe for concurrent use: its owner locks.
type Cache[V any] struct {
	max   int
	items map[string]*node[V]
	root  node[V] // root.next is the most recently used, root.prev the least
}

type node[V any] struct {
	key        string
	val        V
	prev, next *node[V]
}

// New returns an empty Cache that holds at most n entries; n below 1
// means 1.
func New[V any](n int) *Cache[V] {
	n = max(n, 1)
	c := &Cache[V]{max: n, items: make(map[string]*node[V], min(n, 1024))}
	c.root.next, c.root.prev = &c.root, &c.root
	return c
}

// Get returns the value under key and marks it used.
func (c *Cache[V]) Get(key string) (V, bool) {
	n, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.toFront(n)
	return n.val, true
}

// Peek returns the value under key without marking it used.
func (c *Cache[V]) Peek(key string) (V, bool) {
	n, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	return n.val, true
}

// Put sets the value under key and marks it used. When that adds an
// entry to a full Cache, the least recently used one is dropped and
// returned, with evicted true, so that its owner can let go of what
// belongs to it.
func (c *Cache[V]) Put(key string, v V) (dropped V, evicted bool) {
	if n, ok := c.items[key]; ok {
		n.val = v
		c.toFront(n)
		return dropped, false
	}
	if len(c.items) >= c.max {
		old := c.root.prev
		c.unlink(old)
		delete(c.items, old.key)
		dropped, evicted = old.val, true
	}
	n := &node[V]{key: key, val: v}
	c.items[key] = n
	c.link(n)
	return dropped, evicted
}

// Remove drops key, if held.
func (c *Cache[V]) Remove(key string) {
	if n, ok := c.items[key]; ok {
		c.unlink(n)
		delete(c.items, key)
	}
}

// Len returns the number of entries held.
func (c *Cache[V]) Len() int { return len(c.items) }

func (c *Cache[V]) toFront(n *node[V]) {
	if c.root.next != n {
		c.unlink(n)
		c.link(n)
	}
}

func (c *Cache[V]) link(n *node[V]) {
	n.prev, n.next = &c.root, c.root.next
	c.root.next.prev = n
	c.root.next = n
}

func (c *Cache[V]) unlink(n *node[V]) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}
