package lru

import (
	"strconv"
	"testing"
)

func TestEvictsTheLeastRecentlyUsed(t *testing.T) {
	c := New[int](3)
	for i := range 3 {
		if _, evicted := c.Put(strconv.Itoa(i), i); evicted {
			t.Fatalf("put %d evicted below capacity", i)
		}
	}
	c.Get("0")  // 0 is now the most recent: 1 is the least
	c.Peek("1") // a peek does not count as use
	dropped, evicted := c.Put("3", 3)
	if !evicted || dropped != 1 {
		t.Fatalf("want 1 dropped, got %d %v", dropped, evicted)
	}
	if _, ok := c.Get("1"); ok || c.Len() != 3 {
		t.Fatalf("1 still held, or len %d", c.Len())
	}
	for _, k := range []string{"0", "2", "3"} {
		if v, ok := c.Get(k); !ok || strconv.Itoa(v) != k {
			t.Fatalf("%s: %d %v", k, v, ok)
		}
	}
}

func TestPutReplacesWithoutEvicting(t *testing.T) {
	c := New[string](2)
	c.Put("a", "1")
	c.Put("b", "2")
	if _, evicted := c.Put("a", "3"); evicted {
		t.Fatal("replacing a value evicted another")
	}
	if v, _ := c.Get("a"); v != "3" {
		t.Fatalf("a = %q", v)
	}
	// a was refreshed by the Put: b goes first.
	if dropped, _ := c.Put("c", "4"); dropped != "2" {
		t.Fatalf("dropped %q, want b's", dropped)
	}
}

func TestRemove(t *testing.T) {
	c := New[int](2)
	c.Put("a", 1)
	c.Remove("a")
	c.Remove("missing")
	if _, ok := c.Get("a"); ok || c.Len() != 0 {
		t.Fatal("removed entry still held")
	}
	c.Put("b", 2)
	c.Put("c", 3)
	if _, evicted := c.Put("b", 4); evicted || c.Len() != 2 {
		t.Fatal("the list is inconsistent after a remove")
	}
}

func TestCapacityBelowOne(t *testing.T) {
	c := New[int](0)
	c.Put("a", 1)
	if dropped, evicted := c.Put("b", 2); !evicted || dropped != 1 || c.Len() != 1 {
		t.Fatalf("capacity 0 holds one: %d %v len %d", dropped, evicted, c.Len())
	}
}

func BenchmarkGet(b *testing.B) {
	c := New[int](10000)
	for i := range 10000 {
		c.Put(strconv.Itoa(i), i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Get(strconv.Itoa(i % 10000))
		i++
	}
}
